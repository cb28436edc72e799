"""Refreshing analytics.track_daily and analytics.artist_daily (job and command share this)."""

from __future__ import annotations

from lufy.db import Database
from lufy.sqlfiles import load_queries

__all__ = ["refresh_views"]

_Q = load_queries("lufy.analytics")


async def refresh_views(db: Database) -> list[tuple[str, float]]:
    """Recompute the UTC days the analytics projection marked as changed since the last refresh,
    through a SECURITY DEFINER function (lufy_app owns nothing), in one transaction: readers see
    the old rows until it commits. Returns (view, seconds)."""
    async with db.connection() as conn:
        cur = await conn.execute(_Q.refresh_views)
        return [(str(name), float(seconds)) for name, seconds in await cur.fetchall()]
