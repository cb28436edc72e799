"""`lufy`: the command line (CONTRACT.md section 2).

Exit status: 0 on success, 1 on a handled failure (one clear line on stderr), 2 on bad usage.
Sub-command groups live with their context (declared in `lufy.contexts`) and are imported only
when used, so `lufy --help` stays fast and one context's imports never break another's commands.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click
import psycopg
import redis
from psycopg_pool import PoolTimeout

from lufy.contexts import CONTEXTS
from lufy.errors import LufyError

__all__ = ["main"]

# command name -> "module:attribute" of a click command or group: the processes, the demo
# seeder and the runtimes' groups, then each context's commands (`lufy.contexts`). `lufy --help`
# lists them sorted by name.
_LAZY: dict[str, str] = {
    "migrate": "lufy.processes:migrate_command",
    "serve": "lufy.processes:serve_command",
    "worker": "lufy.processes:worker_command",
    "projector": "lufy.processes:projector_command",
    "dev": "lufy.processes:dev_command",
    "seed": "lufy.demo.seed:seed_command",
    "projections": "lufy.projections.cli:projections",
    "events": "lufy.eventstore.cli:events",
    "jobs": "lufy.jobs.cli:jobs",
} | {name: c.module(target) for c in CONTEXTS for name, target in c.cli.items()}


def _extensions() -> dict[str, list[str]]:
    """group name -> commands contexts add to another package's group ("module:attribute"):
    the event store's `events` group gets the analytics context's import and export."""
    found: dict[str, list[str]] = {}
    for context in CONTEXTS:
        for group, targets in context.cli_extensions.items():
            found.setdefault(group, []).extend(context.module(t) for t in targets)
    return found


_EXTENSIONS = _extensions()


def _load(target: str) -> click.Command:
    module_name, attr = target.split(":")
    command = getattr(importlib.import_module(module_name), attr)
    assert isinstance(command, click.Command)
    return command


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_LAZY)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _LAZY.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _unavailable(cmd_name)
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        if isinstance(command, click.Group):
            for extension in _EXTENSIONS.get(cmd_name, ()):
                command.add_command(_load(extension))
        return command


def _unavailable(name: str) -> click.Command:
    def callback() -> None:
        raise click.UsageError(f"'{name}' is not available in this build")

    return click.Command(name, callback=callback, help="(not available in this build)")


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Lufy: an event-sourced, analytics-first music platform."""


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="lufy", standalone_mode=True)
    except LufyError as exc:
        click.echo(f"lufy: {exc.detail}", err=True)
        sys.exit(1)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        lines = str(exc).strip().splitlines()
        click.echo(
            f"lufy: database unreachable: {lines[0] if lines else type(exc).__name__}", err=True
        )
        sys.exit(1)
    except redis.exceptions.ConnectionError as exc:
        click.echo(f"lufy: Redis unreachable: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
