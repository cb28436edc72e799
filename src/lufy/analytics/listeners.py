"""Exact distinct listeners from pre-aggregated state: roaring bitmaps of dense listener ids.

Every listener key gets a dense integer id (`listener_ids`). For every *block* of time, the
ids of the listeners with a stream that started in it are kept as a compressed bitmap
(`listener_bitmaps`), per scope: a track, an artist (also split by country, device and source)
and the whole platform (same splits). Blocks are the UTC quarter-hours, hours and days, so any
range aligned to 15 minutes (every calendar period of every real time zone) is a union of at
most a few dozen hours and quarters plus whole days, and the distinct count of a range is the
size of the union of its blocks' bitmaps: exact, at a cost that follows the number of blocks,
not the number of plays. Each row also carries the streams started in its block (used by the
breakdowns).

Weights stay exact too: a row is kept per weight (1 / sample rate) of the sessions in it, and a
listener counts with the largest weight among its streams in the range, as in a scan.

Maintenance (`BitmapChanges`, called by the analytics projection with each session's
contribution before and after a batch): a session that becomes a stream adds its listener to
its blocks; a session that leaves a block (a late `playback.started` moved it, or it stopped
being a verified stream) makes that block's rows *dirty*, and dirty rows are computed again
from `playback_sessions` (the listener may have another stream in the block), so late and
out-of-order events leave every bitmap exact.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from pyroaring import BitMap

from lufy.sqlfiles import load_queries

__all__ = [
    "DIMENSIONS",
    "EDGE_LISTENERS",
    "PLATFORM",
    "BitmapChanges",
    "Block",
    "RowKey",
    "blocks",
    "read_blocks",
    "weighted_count",
]

_Q = load_queries("lufy.analytics", "listeners.sql")
EDGE_LISTENERS = _Q.edge_listeners
PLATFORM = uuid.UUID(int=0)
DIMENSIONS = ("country", "device", "source")
# Levels of blocks: UTC-aligned quarter-hours, hours, six hours (00, 06, 12, 18) and days.
LEVELS = (("q", 900), ("h", 3600), ("s", 21600), ("d", 86400))
_SECONDS = dict(LEVELS)

Block = tuple[str, int]  # (level, start as epoch seconds)


@dataclass(frozen=True, order=True)
class RowKey:
    """One bitmap row: scope ('t' track, 'a' artist, 'p' platform), owner id, dimension
    ('' = none) and its key, level and block start, and the weight of its sessions."""

    scope: str
    owner: uuid.UUID
    dim: str
    key: str
    level: str
    bucket: datetime
    weight: float
    artist_id: uuid.UUID | None


def floor(moment: datetime, level: str) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % _SECONDS[level], UTC)


def blocks(start: datetime, end: datetime) -> list[Block]:
    """[start, end) (both on 15-minute UTC boundaries) as the fewest UTC days, six hours, hours
    and quarter-hours, greedily from the start."""
    at, stop = start.timestamp(), end.timestamp()
    if at % 900 or stop % 900:
        raise ValueError(f"{start} .. {end} is not on 15-minute boundaries")
    out: list[Block] = []
    now, last = int(at), int(stop)
    while now < last:
        for level, length in reversed(LEVELS):
            if now % length == 0 and now + length <= last:
                out.append((level, now))
                now += length
                break
    return out


def dimension_value(session: Any, dim: str) -> str:
    # As the SQL's coalesce(value, 'unknown'): only a missing value is unknown.
    value: str | None = getattr(session, dim)
    return "unknown" if value is None else value


def session_rows(session: Any) -> set[RowKey]:
    """The bitmap rows a stream session belongs to (nothing when it is not a stream)."""
    out: set[RowKey] = set()
    for level, _ in LEVELS:
        bucket = floor(session.started_at, level)
        w = float(session.weight)
        out.add(RowKey("t", session.track_id, "", "", level, bucket, w, session.artist_id))
        for scope, owner, artist in (
            ("a", session.artist_id, session.artist_id),
            ("p", PLATFORM, None),
        ):
            out.add(RowKey(scope, owner, "", "", level, bucket, w, artist))
            for dim in DIMENSIONS:
                value = dimension_value(session, dim)
                out.add(RowKey(scope, owner, dim, value, level, bucket, w, artist))
    return out


def _columns(rows: Sequence[RowKey]) -> dict[str, list[Any]]:
    return {
        "scope": [r.scope for r in rows],
        "owner": [r.owner for r in rows],
        "dim": [r.dim for r in rows],
        "key": [r.key for r in rows],
        "level": [r.level for r in rows],
        "bucket": [r.bucket for r in rows],
        "weight": [r.weight for r in rows],
    }


class BitmapChanges:
    """What a batch of the analytics projection changes in the bitmaps."""

    def __init__(self) -> None:
        self.added: dict[RowKey, set[str]] = defaultdict(set)  # row -> listener keys
        self.streams: dict[RowKey, float] = defaultdict(float)
        self.dirty: set[RowKey] = set()

    def session(self, before: Any | None, after: Any) -> None:
        """A session changed from `before` (None: new) to `after` (SessionState-like)."""
        old = session_rows(before) if before is not None and before.is_stream() else set()
        new = session_rows(after) if after.is_stream() else set()
        self.dirty |= old - new
        for row in new - old:
            self.added[row].add(after.listener_key)
            self.streams[row] += row.weight

    async def apply(self, conn: AsyncConnection[Any]) -> None:
        """Write the changes (after the batch's sessions were written)."""
        if not self.added and not self.dirty:
            return
        ids = await _listener_ids(conn, {k for keys in self.added.values() for k in keys})
        rows: dict[RowKey, tuple[float, BitMap]] = {}
        dirty = sorted(self.dirty)
        if dirty:
            recomputed: dict[RowKey, tuple[float, BitMap]] = {r: (0.0, BitMap()) for r in dirty}
            cur = await conn.execute(_Q.recompute_rows, _columns(dirty), prepare=False)
            by_index = {i + 1: r for i, r in enumerate(dirty)}
            for n, listener_id in await cur.fetchall():
                row = by_index[n]
                streams, bitmap = recomputed[row]
                bitmap.add(listener_id)
                recomputed[row] = (streams + row.weight, bitmap)
            rows.update(recomputed)
        additive = sorted(r for r in self.added if r not in self.dirty)
        if additive:
            cur = await conn.execute(_Q.lock_rows, _columns(additive), prepare=False)
            current = {
                n: (float(streams), BitMap.deserialize(bytes(data)))
                for n, streams, data in await cur.fetchall()
            }
            for i, row in enumerate(additive):
                streams, bitmap = current.get(i + 1, (0.0, BitMap()))
                bitmap.update(ids[k] for k in self.added[row])
                rows[row] = (streams + self.streams[row], bitmap)
        keep = sorted(r for r, (_, bitmap) in rows.items() if bitmap)
        gone = sorted(r for r, (_, bitmap) in rows.items() if not bitmap)
        if gone:
            await conn.execute(_Q.delete_rows, _columns(gone), prepare=False)
        if keep:
            params = _columns(keep)
            params["artist_id"] = [r.artist_id for r in keep]
            params["streams"] = [rows[r][0] for r in keep]
            params["bitmap"] = [rows[r][1].serialize() for r in keep]
            params["listeners"] = [len(rows[r][1]) for r in keep]
            await conn.execute(_Q.upsert_rows, params, prepare=False)


async def _listener_ids(conn: AsyncConnection[Any], keys: Iterable[str]) -> dict[str, int]:
    """Dense ids for listener keys, assigned on first sight (max + 1: the projection is the
    only writer of its tables, live or shadow, and a rebuild's swap copies ids as they are)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    cur = await conn.execute(_Q.listener_ids, {"keys": wanted})
    ids: dict[str, int] = {k: int(i) for k, i in await cur.fetchall()}
    missing = [k for k in wanted if k not in ids]
    if missing:
        cur = await conn.execute(_Q.assign_listener_ids, {"keys": missing})
        ids.update({k: int(i) for k, i in await cur.fetchall()})
    return ids


async def read_blocks(
    conn: AsyncConnection[Any],
    *,
    scope: str,
    owners: Sequence[uuid.UUID] | None,
    artist: uuid.UUID | None,
    dim: str,
    wanted: Sequence[Block],
) -> list[tuple[uuid.UUID, str, Block, float, float, BitMap]]:
    """(owner, key, block, weight, streams, bitmap) of every row of `wanted` blocks in scope;
    owners None = every owner (of `artist`, when given)."""
    if not wanted:
        return []
    buckets: dict[str, list[datetime]] = {level: [] for level, _ in LEVELS}
    for level, epoch in wanted:
        buckets[level].append(datetime.fromtimestamp(epoch, UTC))
    async with conn.cursor(binary=True) as cur:
        await cur.execute(
            _Q.read_rows,
            {
                "scope": scope,
                "owners": list(owners) if owners is not None else None,
                "artist": artist,
                "dim": dim,
                **buckets,
            },
            prepare=False,
        )
        rows = await cur.fetchall()
    return [
        (
            owner,
            key,
            (level, epoch),
            weight,
            streams,
            BitMap.deserialize(bytes(data)),
        )
        for owner, key, level, epoch, weight, streams, data in rows
    ]


def weighted_count(members: Iterable[tuple[float, BitMap]]) -> float:
    """Distinct listeners over (weight, bitmap) pairs, each counted once with its largest
    weight."""
    by_weight: dict[float, list[BitMap]] = defaultdict(list)
    for weight, bitmap in members:
        by_weight[weight].append(bitmap)
    seen = BitMap()
    total = 0.0
    for weight in sorted(by_weight, reverse=True):
        union = BitMap.union(*by_weight[weight])
        total += weight * len(union - seen) if seen else weight * len(union)
        seen |= union
    return total
