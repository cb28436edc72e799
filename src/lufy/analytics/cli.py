"""`lufy analytics ...`."""

from __future__ import annotations

import asyncio

import click

__all__ = ["analytics"]


@click.group()
def analytics() -> None:
    """Analytics views and metrics."""


@analytics.command("refresh")
def refresh() -> None:
    """Refresh analytics.track_daily and artist_daily now (what the analytics-refresh job does)."""
    from lufy.analytics.refresh import refresh_views
    from lufy.db import Database
    from lufy.settings import get_settings

    async def run() -> list[tuple[str, float]]:
        db = Database(get_settings().DATABASE_URL, min_size=1, max_size=1, name="lufy-refresh")
        await db.open(wait=True)
        try:
            return await refresh_views(db)
        finally:
            await db.close()

    for name, seconds in asyncio.run(run()):
        click.echo(f"refreshed analytics.{name} in {seconds:.3f}s", err=True)
