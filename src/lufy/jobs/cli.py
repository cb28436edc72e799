"""`lufy jobs`: what the job ledger holds, dead jobs, and retrying them (docs/operations.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click
from psycopg import AsyncConnection

from lufy.jobs.broker import configure
from lufy.jobs.ledger import counts, enqueue, list_jobs, revive_dead, sweep
from lufy.settings import get_settings

__all__ = ["jobs"]


@click.group("jobs")
def jobs() -> None:
    """Inspect and retry background jobs (tracked in lufy.jobs)."""


async def _connect() -> AsyncConnection[Any]:
    return await AsyncConnection.connect(get_settings().DATABASE_URL, autocommit=True)


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("no jobs", err=True)
        return
    for r in rows:
        error = f"  {r['last_error']}" if r.get("last_error") else ""
        click.echo(
            f"{r['created_at']:%Y-%m-%d %H:%M:%S}  {r['status']:<8} {r['queue']:<18} "
            f"{r['actor']}[{r['job_key']}] attempts={r['attempts']} "
            f"correlation={r['correlation_id'] or '-'}{error}"
        )


@jobs.command("status")
def status_command() -> None:
    """Jobs per queue and status."""

    async def run() -> list[tuple[str, str, int]]:
        async with await _connect() as conn:
            return await counts(conn)

    for queue, status, count in asyncio.run(run()):
        click.echo(f"{queue:<20} {status:<9} {count}")


@jobs.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "running", "retrying", "done", "dead"]),
    default=None,
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def list_command(status: str | None, limit: int, as_json: bool) -> None:
    """The most recent jobs (optionally of one status)."""

    async def run() -> list[dict[str, Any]]:
        async with await _connect() as conn:
            return await list_jobs(conn, status=status, limit=limit)

    _print_rows(asyncio.run(run()), as_json)


@jobs.command("dead")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
def dead_command(limit: int, as_json: bool) -> None:
    """The dead-letter list: jobs that ran out of retries, with their last error."""

    async def run() -> list[dict[str, Any]]:
        async with await _connect() as conn:
            return await list_jobs(conn, status="dead", limit=limit)

    _print_rows(asyncio.run(run()), as_json)


@jobs.command("retry")
@click.option("--actor", default=None, help="only dead jobs of this actor")
@click.option("--key", "job_key", default=None, help="only the dead job with this key")
@click.option("--all", "everything", is_flag=True, help="every dead job")
def retry_command(actor: str | None, job_key: str | None, everything: bool) -> None:
    """Send dead jobs again, with a fresh retry budget."""
    if not (actor or job_key or everything):
        raise click.UsageError("say which dead jobs: --actor, --key or --all")

    async def run() -> int:
        runtime = await asyncio.to_thread(configure, get_settings())
        try:
            async with await _connect() as conn:
                async with conn.transaction():
                    revived = await revive_dead(conn, actor=actor, job_key=job_key)
                return await enqueue(runtime, revived)
        finally:
            await asyncio.to_thread(runtime.close)

    sent = asyncio.run(run())
    click.echo(f"{sent} dead job(s) sent again", err=True)


@jobs.command("sweep")
@click.option("--grace", default=30.0, show_default=True, help="seconds a job may wait unsent")
def sweep_command(grace: float) -> None:
    """Re-enqueue now every unfinished job whose message Redis lost (the projector does this
    periodically)."""

    async def run() -> int:
        runtime = await asyncio.to_thread(configure, get_settings())
        try:
            async with await _connect() as conn:
                return await sweep(conn, runtime, grace_seconds=grace)
        finally:
            await asyncio.to_thread(runtime.close)

    click.echo(f"{asyncio.run(run())} job(s) re-enqueued", err=True)
