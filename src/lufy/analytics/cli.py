"""`lufy analytics ...`, and `lufy events import` / `export` (added to the event store's
`events` group by the top-level command line)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import psycopg

from lufy.analytics.export import export_events
from lufy.analytics.refresh import refresh_views
from lufy.privacy.retention import expire_raw_analytics, first_kept_month
from lufy.settings import get_settings

__all__ = ["analytics", "events_export", "events_import"]


@click.group()
def analytics() -> None:
    """Analytics views and metrics."""


@analytics.command("refresh")
def refresh() -> None:
    """Refresh analytics.track_daily and artist_daily now (what the analytics-refresh job does)."""
    from lufy.bootstrap import run_with_container  # cheap CLI start: every service, ~330 ms

    for name, seconds in run_with_container(lambda container: refresh_views(container.db)):
        click.echo(f"refreshed analytics.{name} in {seconds:.3f}s", err=True)


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def events_import(file: str) -> None:
    """Append NDJSON analytics events (historical timestamps allowed), idempotent by event_id."""
    from lufy.analytics.importer import import_file  # cheap CLI start: ~130 ms
    from lufy.bootstrap import run_with_container  # cheap CLI start: every service, ~330 ms

    run_with_container(lambda container: import_file(container, file))


@click.command("export")
@click.option(
    "--since",
    "since",
    required=True,
    type=click.IntRange(min=0),
    help="the transaction_id of the last event a previous export wrote (0 the first time)",
)
@click.option(
    "--format", "fmt", type=click.Choice(["ndjson", "parquet"]), default="ndjson", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="file to write (atomically); ndjson goes to stdout without it",
)
def events_export(since: int, fmt: str, out: str | None) -> None:
    """Events without personal data for warehouses, in commit order, safe to resume."""

    if fmt == "parquet" and out is None:
        raise click.UsageError("--format parquet needs --out PATH")
    result = export_events(
        get_settings(),
        since=since,
        fmt="parquet" if fmt == "parquet" else "ndjson",
        out=Path(out) if out else None,
    )
    click.echo(
        f"exported {result.events} events below safe position {result.safe_position}; "
        f"next: --since {result.resume_from}",
        err=True,
    )


@analytics.command("expire-raw")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="retention in days (default: ANALYTICS_RAW_RETENTION_DAYS)",
)
def expire_raw(days: int | None) -> None:
    """Make the listener ids of months older than the retention period unreadable, now."""
    settings = get_settings()
    days = days or settings.ANALYTICS_RAW_RETENTION_DAYS
    if days is None:
        raise click.UsageError("ANALYTICS_RAW_RETENTION_DAYS is unset and no --days given")
    with psycopg.connect(settings.DATABASE_URL) as conn:
        expired = expire_raw_analytics(conn, days)
    if expired is None:
        click.echo(f"nothing to expire: every month before {_first(days)} already is", err=True)
    else:
        click.echo(f"destroyed the listener-id keys of {', '.join(expired.months)}", err=True)


def _first(days: int) -> str:
    return first_kept_month(days, datetime.now(UTC)).isoformat()
