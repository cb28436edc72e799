"""`lufy events ...`: the event catalogue and following the log.

`lufy events import` and `export` are the analytics context's (`lufy.analytics.cli`); the
top-level command line adds them to this group.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from lufy.eventstore.codec import default_codec
from lufy.eventstore.tail import follow
from lufy.sqlfiles import data_dir

__all__ = ["events", "write_schemas"]


def _catalogue_dir() -> Path:
    folder = data_dir("events")
    assert isinstance(folder, Path), "the catalogue can only be written in a source checkout"
    return folder


def expected_schemas() -> dict[str, str]:
    """File name -> content of every JSON Schema the codec implies."""
    codec = default_codec()
    out: dict[str, str] = {}
    for type_name in codec.types:
        schema = codec.json_schema(type_name)
        out[f"{type_name}.v{codec.schema_version(type_name)}.json"] = (
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )
    return out


def write_schemas(folder: Path) -> list[str]:
    """Write the catalogue; return the names of files that changed."""
    changed = []
    for name, text in expected_schemas().items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    return changed


@click.group()
def events() -> None:
    """The event log."""


@events.command("schema")
@click.option("--check", is_flag=True, help="fail when events/ differs from the code")
def schema(check: bool) -> None:
    """Generate events/: one JSON Schema per event type and version."""
    folder = _catalogue_dir()
    expected = expected_schemas()
    if check:
        present = {p.name: p.read_text() for p in folder.glob("*.json")}
        current = {n for n in expected if n in present}
        # Older versions stay in the catalogue as history; only current ones must match.
        drift = sorted(n for n in expected if present.get(n) != expected[n])
        if drift:
            click.echo(
                f"events/ is out of date for {', '.join(drift)}: run `lufy events schema`", err=True
            )
            sys.exit(1)
        click.echo(f"events/ matches the code ({len(current)} schemas)", err=True)
        return
    changed = write_schemas(folder)
    click.echo(f"wrote {len(changed)} schema(s) to {folder}", err=True)


@events.command("tail")
@click.option("--type", "types", multiple=True, help="only these event types (repeatable)")
@click.option("--from-start", is_flag=True, help="start at the beginning instead of the end")
def tail(types: tuple[str, ...], from_start: bool) -> None:
    """Follow the log, one JSON line per event."""
    from lufy.bootstrap import run_with_container  # cheap CLI start: every service, ~330 ms

    with contextlib.suppress(KeyboardInterrupt):
        run_with_container(
            lambda container: follow(
                container.store, container.settings, types or None, from_start=from_start
            )
        )
