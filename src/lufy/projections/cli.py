"""`lufy projections status|rebuild|skip` (CONTRACT.md section 2; docs/operations.md)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
import msgspec
from psycopg import AsyncConnection

from lufy.projections.base import Projection
from lufy.projections.discovery import all_projections
from lufy.projections.operations import skip_event, status
from lufy.settings import get_settings

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["projections"]


@click.group("projections")
def projections() -> None:
    """Inspect, rebuild and unblock projections."""


def _find(name: str) -> Projection:
    found = {p.name: p for p in all_projections()}
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise click.UsageError(f"unknown projection {name!r} (known: {known})")
    return found[name]


async def _connect() -> AsyncConnection[Any]:
    return await AsyncConnection.connect(get_settings().DATABASE_URL, autocommit=True)


def _holder_line(holder: dict[str, Any] | None) -> str | None:
    if not holder:
        return None
    # Another role's backend shows no details to the app role: say what is known.
    who = ", ".join(str(holder[k]) for k in ("user", "application_name") if holder.get(k))
    seconds = holder.get("seconds")
    since = f" for {seconds:.1f}s" if isinstance(seconds, int | float) else ""
    state = holder.get("state") or "in a transaction"
    query = f": {holder['query']!r}" if holder.get("query") else ""
    return (
        f"read barrier held by pid {holder['pid']} ({who or 'another role'}), {state}{since}{query}"
    )


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="a JSON list instead of a table")
def status_command(as_json: bool) -> None:
    """Each projection: position, lag in events and seconds, state, owner."""

    async def run() -> tuple[list[Any], dict[str, Any] | None]:
        async with await _connect() as conn:
            return await status(conn)

    rows, holder = asyncio.run(run())
    line = _holder_line(holder)
    if as_json:
        click.echo(json.dumps([msgspec.to_builtins(r) for r in rows], indent=2))
        if line:
            click.echo(line, err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="projections")
    for column in ("name", "kind", "version", "state", "position", "lag events", "lag s", "owner"):
        table.add_column(
            column, justify="right" if column.startswith(("lag", "pos", "ver")) else "left"
        )
    for r in rows:
        state = r.state if r.state != "failed" else f"[red]failed at {r.failed_position}[/red]"
        table.add_row(
            r.name,
            r.kind,
            str(r.version),
            state,
            "-" if r.position is None else str(r.position),
            str(r.lag_events),
            f"{r.lag_seconds:.1f}",
            r.owner or "-",
        )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    for r in rows:
        if r.state == "failed":
            console.print(f"[red]{r.name}[/red] stopped at {r.failed_position}: {r.error}")
            console.print(
                "  fix and restart the projector, or: "
                f"lufy projections skip {r.name} {r.failed_position}"
            )
    if line:
        console.print(f"[yellow]{line}[/yellow]")


@projections.command("rebuild")
@click.argument("name")
@click.option(
    "--until", "until_text", default=None, help="build as of this time (RFC 3339); no swap"
)
@click.option(
    "--batch-size",
    default=None,
    type=click.IntRange(1, 1_000_000),
    help="events per transaction (default 5000, or a RangeProjection's rebuild_step); for a "
    "RangeProjection's first pass, log positions per transaction (default: its rebuild_step)",
)
@click.option(
    "--compare", is_flag=True, help="count rows that differ from the live model before the swap"
)
def rebuild_command(
    name: str, until_text: str | None, batch_size: int | None, compare: bool
) -> None:
    """Rebuild NAME from the log into its shadow copy, then swap it in (resumable)."""
    from lufy.projections.rebuild import rebuild, until_from_text  # cheap CLI start: ~10 ms

    projection = _find(name)
    until: datetime | None = None
    if until_text:
        try:
            until = until_from_text(until_text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--until") from None
    progress, on_progress = _rebuild_progress(name)
    try:
        with progress:
            result = asyncio.run(
                rebuild(
                    get_settings().DATABASE_URL,
                    projection,
                    until=until,
                    batch_size=batch_size,
                    progress=on_progress,
                    compare=compare,
                )
            )
    except KeyboardInterrupt:
        click.echo(f"interrupted: run `lufy projections rebuild {name}` again to resume", err=True)
        sys.exit(1)
    for table, (only_live, only_rebuilt) in result.differences.items():
        click.echo(f"  {table}: {only_live} row(s) only in live, {only_rebuilt} only in rebuilt")
    where = "swapped in" if result.swapped else "left in lufy_shadow (no swap with --until)"
    resumed = " (resumed)" if result.resumed else ""
    click.echo(
        f"rebuilt {name} v{result.version}{resumed}: {result.events_applied} events in "
        f"{result.seconds:.1f}s, {where}",
        err=True,
    )


def _rebuild_progress(name: str) -> tuple[Progress, Callable[[int, int], None]]:
    """The rebuild's progress bar (a rich Progress) and the callback that moves it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} events/s" if speed else "- events/s")

    progress = Progress(
        TextColumn(f"rebuilding {name}"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=False,
    )
    task_id = progress.add_task(name, total=None)

    def on_progress(done: int, total: int) -> None:
        progress.update(task_id, completed=done, total=total)

    return progress, on_progress


@projections.command("skip")
@click.argument("name")
@click.argument("position", type=click.IntRange(1))
@click.option("--reason", default="", help="recorded with the operator event")
def skip_command(name: str, position: int, reason: str) -> None:
    """Move NAME past the event at POSITION (the one it is stopped at); recorded in the log."""
    projection = _find(name)

    async def run() -> None:
        async with await _connect() as conn:
            await skip_event(conn, projection, position, reason=reason)

    asyncio.run(run())
    click.echo(f"{name}: skipped the event at {position}; the projector resumes after it", err=True)
