"""Streams per minute of the last day: what `/api/dashboard/realtime` reads.

The dashboard's blocks start at quarter-hours, and realtime shows minutes, so the analytics
projection also keeps `session_minutes` (projections/analytics_minutes.sql): per artist and for
the platform, the streams that started in each UTC minute of the last day. `add_batch` adds each
changed session's streams after minus before (a late `playback.started` moves a stream to its
true minute, a session that crosses 30 s becomes one), like the counters per block, and drops
minutes older than a day; a realtime request reads at most 30 rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from lufy.sqlfiles import load_queries

__all__ = ["add_batch", "read"]

_Q = load_queries("lufy.analytics", "minutes.sql")
PLATFORM = uuid.UUID(int=0)


async def add_batch(conn: AsyncConnection[Any]) -> None:
    """Add what a range changed (the projection's work table of changed sessions, after
    `verify`) to the minutes, and drop the minutes older than a day."""
    await conn.execute(_Q.add_batch)
    await conn.execute(_Q.drop_old)


async def read(
    conn: AsyncConnection[Any], artist: uuid.UUID | None, start: datetime, end: datetime
) -> dict[int, float]:
    """Streams per minute of [start, end) (UTC epoch of the minute -> streams), of `artist`
    or, None, of the platform."""
    cur = await conn.execute(
        _Q.read,
        {
            "scope": "a" if artist is not None else "p",
            "owner": artist if artist is not None else PLATFORM,
            "from": start,
            "to": end,
        },
    )
    return {int(epoch): float(streams) for epoch, streams in await cur.fetchall()}
