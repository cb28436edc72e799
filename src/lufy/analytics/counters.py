"""Session counters per block of time: streams, listened ms, starts, completions and skips.

The same blocks as the listener bitmaps (lufy/analytics/listeners.py: UTC quarter-hours, hours,
six hours and days) and the same scopes (a track, an artist, the platform), so the counters of
any 15-minute-aligned range are sums over a few dozen rows, whatever the traffic in it. Kept
by the analytics projection with each session's contribution before and after a batch
(`CounterChanges`, called from `listeners.BitmapChanges`): plain sums, so late and moved
sessions stay exact. Likes and follows stay in the 15-minute rollups (they are rare).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, AsyncCursor

from lufy.sqlfiles import load_queries

__all__ = ["CounterChanges", "level_arrays", "send_read"]

_Q = load_queries("lufy.analytics", "counters.sql")
PLATFORM = uuid.UUID(int=0)
_LEVELS = (("q", 900), ("h", 3600), ("s", 21600), ("d", 86400))
_Key = tuple[str, uuid.UUID, str, datetime, uuid.UUID | None]
_NAMES = ("streams", "listen_ms", "starts", "completions", "skips")


def _values(session: Any) -> tuple[float, ...]:
    w = float(session.weight)
    return (
        w if session.is_stream() else 0.0,
        session.listened_ms * w,
        w,
        w if session.completed else 0.0,
        w if session.skipped else 0.0,
    )


class CounterChanges:
    """What a batch of the analytics projection adds to the counters."""

    def __init__(self) -> None:
        self.deltas: dict[_Key, list[float]] = defaultdict(lambda: [0.0] * len(_NAMES))

    def session(self, before: Any | None, after: Any) -> None:
        """A session changed from `before` (None: new) to `after` (SessionState-like)."""
        for session, sign in ((before, -1.0), (after, 1.0)):
            if session is None:
                continue
            values = _values(session)
            epoch = int(session.started_at.timestamp())
            for level, length in _LEVELS:
                bucket = datetime.fromtimestamp(epoch - epoch % length, UTC)
                for scope, owner, artist in (
                    ("t", session.track_id, session.artist_id),
                    ("a", session.artist_id, session.artist_id),
                    ("p", PLATFORM, None),
                ):
                    acc = self.deltas[(scope, owner, level, bucket, artist)]
                    for i, v in enumerate(values):
                        acc[i] += sign * v

    async def apply(self, conn: AsyncConnection[Any]) -> None:
        keys = sorted(
            (k for k, v in self.deltas.items() if any(v)), key=lambda k: (*k[:4], str(k[4]))
        )
        if not keys:
            return
        params: dict[str, list[Any]] = {
            name: [k[i] for k in keys]
            for i, name in enumerate(("scope", "owner", "level", "bucket", "artist_id"))
        }
        for i, name in enumerate(_NAMES):
            params[name] = [self.deltas[k][i] for k in keys]
        await conn.execute(_Q.add, params, prepare=False)


def level_arrays(wanted: Sequence[tuple[str, int]]) -> dict[str, str | int | None]:
    """Blocks as the read queries' parameters: per level, one array literal of epochs (one text
    is far cheaper to send than its elements one by one) or, when the blocks of the level are
    every block from the first to the last (an hourly chart: every hour), that range
    (`q_lo`, `q_hi`...): one index range scan instead of thousands of probes."""
    epochs: dict[str, list[int]] = {level: [] for level, _ in _LEVELS}
    for level, epoch in wanted:
        epochs[level].append(epoch)
    out: dict[str, str | int | None] = {}
    for level, length in _LEVELS:
        found = sorted(set(epochs[level]))
        whole = len(found) > 8 and (found[-1] - found[0]) // length + 1 == len(found)
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
) -> AsyncCursor[Any]:
    """Queue the read of the counters of some blocks (`level_arrays`): rows (owner, level,
    epoch, streams, listen_ms, starts, completions, skips)."""
    return await conn.execute(
        _Q.read,
        {
            "scope": scope,
            "owners": list(owners) if owners is not None else None,
            "artist": artist,
            **levels,
        },
        prepare=False,
    )
