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
its blocks; when a session leaves a block (a late `playback.started` moved it, or it stopped
being a verified stream), its listener is removed from that block's rows unless another of the
listener's stream sessions is still in the block (asked of the listener's own sessions, so the
cost follows that listener, not the block's traffic). Streams are plain sums. Late and
out-of-order events therefore leave every bitmap exact.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from psycopg import AsyncConnection, AsyncCursor
from pyroaring import BitMap

from lufy.analytics.bitmap_cache import BitmapCache
from lufy.analytics.counters import CounterChanges
from lufy.sqlfiles import load_queries

__all__ = [
    "DIMENSIONS",
    "EDGE_LISTENERS",
    "PLATFORM",
    "BitmapChanges",
    "Block",
    "BlockRow",
    "Read",
    "RowKey",
    "blocks",
    "epoch_blocks",
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


class RowKey(NamedTuple):
    """One bitmap row: scope ('t' track, 'a' artist, 'p' platform), owner id, dimension
    ('' = none) and its key, level and block start, and the weight of its sessions. A named
    tuple, not a dataclass: 36 are built and hashed per stream session, half the CPU."""

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
    return list(epoch_blocks(int(at), int(stop)))


@lru_cache(maxsize=1 << 16)
def epoch_blocks(now: int, last: int) -> tuple[Block, ...]:
    """`blocks` of epochs [now, last) (cached: a chart asks for the same buckets again)."""
    length = last - now
    if length in (3600, 86400) and now % length == 0:  # an hour or a day of an UTC chart
        return (("h" if length == 3600 else "d", now),)
    out: list[Block] = []
    while now < last:
        for level, length in reversed(LEVELS):
            if now % length == 0 and now + length <= last:
                out.append((level, now))
                now += length
                break
    return tuple(out)


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
        # row -> listener keys whose session entered / left the row in this batch
        self.added: dict[RowKey, set[str]] = defaultdict(set)
        self.left: dict[RowKey, set[str]] = defaultdict(set)
        self.streams: dict[RowKey, float] = defaultdict(float)
        self.counters = CounterChanges()

    def session(self, before: Any | None, after: Any) -> None:
        """A session changed from `before` (None: new) to `after` (SessionState-like)."""
        self.counters.session(before, after)
        old = session_rows(before) if before is not None and before.is_stream() else set()
        new = session_rows(after) if after.is_stream() else set()
        for row in old - new:
            self.left[row].add(after.listener_key)
            self.streams[row] -= row.weight
        for row in new - old:
            self.added[row].add(after.listener_key)
            self.streams[row] += row.weight

    async def apply(self, conn: AsyncConnection[Any]) -> None:
        """Write the changes (after the batch's sessions were written)."""
        await self.counters.apply(conn)
        if not self.streams:
            return
        keys = {k for keys in (*self.added.values(), *self.left.values()) for k in keys}
        ids = await _listener_ids(conn, keys)
        # A listener whose session left a row stays in it when another of their stream
        # sessions is still there: asked per (row, listener), by the listener's own sessions.
        leaving = sorted((row, k) for row, ks in self.left.items() for k in ks)
        gone: set[tuple[RowKey, str]] = set()
        if leaving:
            params = _columns([row for row, _ in leaving])
            params["listener"] = [k for _, k in leaving]
            cur = await conn.execute(_Q.still_there, params, prepare=False)
            stay = {int(r[0]) for r in await cur.fetchall()}
            gone = {pair for i, pair in enumerate(leaving) if i + 1 not in stay}
        touched = sorted(self.streams)
        cur = await conn.execute(_Q.lock_rows, _columns(touched), prepare=False)
        current = {
            n: (float(streams), BitMap.deserialize(bytes(data)))
            for n, streams, data in await cur.fetchall()
        }
        rows: dict[RowKey, tuple[float, BitMap]] = {}
        for i, row in enumerate(touched):
            streams, bitmap = current.get(i + 1, (0.0, BitMap()))
            bitmap.difference_update(
                BitMap(ids[k] for k in self.left.get(row, ()) if (row, k) in gone)
            )
            bitmap.update(ids[k] for k in self.added.get(row, ()))
            rows[row] = (streams + self.streams[row], bitmap)
        keep = [r for r in touched if rows[r][1]]
        empty = [r for r in touched if not rows[r][1]]
        if empty:
            await conn.execute(_Q.delete_rows, _columns(empty), prepare=False)
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


class BlockRow:
    """One bitmap row as read; its bitmap is decoded (or taken from the cache) when asked."""

    __slots__ = ("block", "key", "listeners", "owner", "read", "streams", "version", "weight")

    def __init__(self, read: Read, row: Sequence[Any]) -> None:
        self.read = read
        self.owner: uuid.UUID = row[0]
        self.key: str = row[1]
        self.block: Block = (row[2], row[3])
        self.weight: float = row[4]
        self.streams: float = row[5]
        self.listeners: int = row[6]
        self.version: str = row[7]

    def bitmap(self) -> BitMap:
        return self.read.bitmap(self)


class Read:
    """The rows of some blocks in one scope, queued by `send` and collected by `rows`."""

    def __init__(self, cache: BitmapCache, scope: str, dim: str, artist: uuid.UUID | None) -> None:
        self.cache, self.scope, self.dim, self.artist = cache, scope, dim, artist
        self.cursor: AsyncCursor[Any] | None = None
        self.known: dict[str, BitMap] = {}
        self._data: dict[str, tuple[bytes, uuid.UUID | None]] = {}

    async def send(
        self,
        conn: AsyncConnection[Any],
        owners: Sequence[uuid.UUID] | None,
        wanted: Sequence[Block],
        levels: dict[str, str | int | None],
    ) -> Read:
        """Queue the read of every row of `wanted` blocks (`levels`: the same as
        `counters.level_arrays`; owners None = every owner, of the artist when given), without
        the bytes of the versions the cache holds."""
        if not wanted:
            return self
        self.known = self.cache.known(
            [(self.scope, self.dim, level, epoch) for level, epoch in wanted], owners, self.artist
        )
        self.cursor = conn.cursor(binary=True)
        await self.cursor.execute(
            _Q.read_rows,
            {
                "scope": self.scope,
                "owners": list(owners) if owners is not None else None,
                "artist": self.artist,
                "dim": self.dim,
                "known": _array(f'"{v}"' for v in self.known),
                **levels,
            },
            prepare=False,
        )
        return self

    async def rows(self) -> list[BlockRow]:
        if self.cursor is None:
            return []
        out = []
        for row in await self.cursor.fetchall():
            block = BlockRow(self, row)
            if row[9] is not None:
                self._data[block.version] = (row[9], row[8])
            out.append(block)
        return out

    def bitmap(self, row: BlockRow) -> BitMap:
        found = self.known.get(row.version)
        if found is None:
            data, artist = self._data.pop(row.version)
            place = (self.scope, self.dim, *row.block)
            found = self.known[row.version] = self.cache.add(
                row.version, place, row.owner, artist, data
            )
        return found


def _array(items: Iterable[object]) -> str:
    return "{" + ",".join(map(str, items)) + "}"


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
