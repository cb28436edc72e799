"""Session counters per block of time: streams, listened ms, starts, completions and skips.

The same blocks as the listener bitmaps (lufy/analytics/listeners.py: UTC quarter-hours, hours,
six hours and days, and hours from half past) and the same scopes (a track, an artist, the
platform), so the counters of any 15-minute-aligned range are sums over a few dozen rows,
whatever the traffic in it. Kept by the analytics projection with each changed session's
contribution after minus before a range (`add_batch`: set-based, from the range's deltas, one
upsert): plain sums, so late and moved sessions stay exact. Likes and follows stay in the
15-minute rollups (they are rare).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, AsyncCursor, Connection

from lufy.sqlfiles import load_queries

__all__ = [
    "add_batch",
    "day_rows",
    "fill_offset_hours",
    "has_offset_hour",
    "level_arrays",
    "send_read",
]

_Q = load_queries("lufy.analytics", "counters.sql")
PLATFORM = uuid.UUID(int=0)
_LEVELS = (("q", 900), ("o", 3600), ("h", 3600), ("s", 21600), ("d", 86400))
# The last hour from half past of a UTC day starts at 22:30: a block lies in one UTC day.
_LAST_OFFSET_HOUR = 22 * 3600 + 1800


def has_offset_hour(epoch: int) -> bool:
    """Whether an hour from half past starting at `epoch` (at :30) has its own block ('o'):
    every one but the hour from 23:30, which would cross midnight UTC."""
    return epoch % 86400 <= _LAST_OFFSET_HOUR


async def add_batch(conn: AsyncConnection[Any]) -> None:
    """Add what a range of the analytics projection changed (its work table of deltas, after
    minus before per changed session) to the counters, in one statement."""
    await conn.execute(_Q.add_batch)


def fill_offset_hours(conn: Connection[Any]) -> int:
    """Derive the rows of level 'o' (hours from half past) from the quarter-hour rows where the
    table predates the level (`lufy migrate`, with the table's schema first on the search
    path). Returns the number of rows written; the table is analyzed after them."""
    written = conn.execute(_Q.fill_offset_hours).rowcount
    if written > 0:
        conn.execute(_Q.analyze_blocks)
    return written


def level_arrays(wanted: Sequence[tuple[str, int]]) -> dict[str, str | int | None]:
    """Blocks as the read queries' parameters: per level, one array literal of epochs (one text
    is far cheaper to send than its elements one by one) or, when the blocks of the level are
    every block from the first to the last (an hourly chart: every hour), that range
    (`q_lo`, `q_hi`...): one index range scan instead of thousands of probes. (Hours from half
    past have no block from 23:30: every other one is every block.)"""
    epochs: dict[str, list[int]] = {level: [] for level, _ in _LEVELS}
    for level, epoch in wanted:
        epochs[level].append(epoch)
    out: dict[str, str | int | None] = {}
    # The UTC days the blocks lie in (the reads look up only blocks of days with sessions).
    every = [epoch for _, epoch in wanted] or [0]
    out["day_lo"], out["day_hi"] = min(every) // 86400 * 86400, max(every) // 86400 * 86400
    for level, length in _LEVELS:
        found = sorted(set(epochs[level]))
        whole = len(found) > 8 and found == [
            e for e in range(found[0], found[-1] + 1, length) if level != "o" or has_offset_hour(e)
        ]
        out[level] = "{}" if whole else "{" + ",".join(map(str, found)) + "}"
        out[f"{level}_lo"] = found[0] if whole else None
        out[f"{level}_hi"] = found[-1] if whole else None
    return out


async def send_read(
    conn: AsyncConnection[Any],
    *,
    scope: str,
    owners: Sequence[uuid.UUID] | None,
    artist: uuid.UUID | None,
    levels: dict[str, str | int | None],
    grouping: dict[str, object],
) -> AsyncCursor[Any]:
    """Queue the read of the counters of some blocks (`level_arrays`), summed in PostgreSQL per
    owner and bucket (`grouping`, as `Grid.groups_by`: `by_bucket`, `step`, `first`, `epochs`),
    or per owner: rows (owner, bucket index or 0, streams, listen_ms, starts, completions,
    skips)."""
    return await conn.execute(
        _Q.read,
        {
            **grouping,
            "scope": scope,
            "owners": list(owners) if owners is not None else None,
            "artist": artist,
            **day_rows(artist),
            **levels,
        },
        prepare=False,
    )


def day_rows(artist: uuid.UUID | None) -> dict[str, str | uuid.UUID]:
    """Whose day rows of `session_blocks` tell the reads which UTC days have sessions: the
    artist's (their tracks' days are among them), else the platform's."""
    return (
        {"day_scope": "a", "day_owner": artist}
        if artist
        else {"day_scope": "p", "day_owner": PLATFORM}
    )
