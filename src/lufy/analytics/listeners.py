"""Exact distinct listeners from pre-aggregated state: roaring bitmaps of dense listener ids.

Every listener key gets a dense integer id (`listener_ids`). For every *block* of time, the
ids of the listeners with a stream that started in it are kept as a compressed bitmap
(`listener_bitmaps`), per scope: a track, an artist (also split by country, device and source)
and the whole platform (same splits). Blocks are the UTC quarter-hours, hours and days (and, for
the rows without dimension, the hours from half past: an hour of India's time is one row), so
any range aligned to 15 minutes (every calendar period of every real time zone) is a union of
at most a few dozen hours and quarters plus whole days, and the distinct count of a range is the
size of the union of its blocks' bitmaps: exact, at a cost that follows the number of blocks,
not the number of plays. Each row also carries the streams started in its block (used by the
breakdowns).

Weights stay exact too: a row is kept per weight (1 / sample rate) of the sessions in it, and a
listener counts with the largest weight among its streams in the range, as in a scan.

Maintenance (`apply_batch`, called by the analytics projection after it wrote a range's
sessions): set-based. SQL takes each changed session before and after where its rows may have
changed and gives new listeners their dense ids; Python groups the sides entering rows into
the quarter-hour rows they add to (9 per side, the ids of each row a bitmap at once), and SQL
derives the hours, six hours and days those lie in (and the hours from half past of the rows
without dimension). A side leaving rows (rare) is expanded into its 39 rows in SQL: a
listener whose session left a row is removed from it unless another of the listener's stream
sessions is still in the block (asked of the listener's own sessions, so the cost follows that
listener, not the block's traffic). Python then merges each row's
bitmap with those ids (in C, pyroaring) and writes the rows back in bulk. Streams are plain
sums. Late and out-of-order events therefore leave every bitmap exact.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from psycopg import AsyncConnection, AsyncCursor, Connection
from pyroaring import BitMap

from lufy.analytics import counters
from lufy.analytics.bitmap_cache import BitmapCache
from lufy.sqlfiles import load_queries

__all__ = [
    "EDGE_LISTENERS",
    "PLATFORM",
    "Block",
    "GroupRow",
    "Read",
    "apply_batch",
    "blocks",
    "epoch_blocks",
    "fill_offset_hours",
    "is_offset_hour",
    "weighted_count",
]

_Q = load_queries("lufy.analytics", "listeners.sql")
EDGE_LISTENERS = _Q.edge_listeners
PLATFORM = uuid.UUID(int=0)
# Levels of blocks: UTC-aligned quarter-hours, hours, six hours (00, 06, 12, 18) and days.
LEVELS = (("q", 900), ("h", 3600), ("s", 21600), ("d", 86400))
# And, for the rows without dimension only (scopes' totals: what hourly charts read), hours from
# half past ('o', 00:30 to 23:30 UTC: a block lies in one UTC day): an hour of a zone offset by
# a half hour (India, Newfoundland, Iran...) is one row instead of four quarter-hours.
OFFSET_HOUR = "o"

Block = tuple[str, int]  # (level, start as epoch seconds)


def blocks(start: datetime, end: datetime) -> list[Block]:
    """[start, end) (both on 15-minute UTC boundaries) as the fewest UTC days, six hours, hours
    and quarter-hours, greedily from the start."""
    at, stop = start.timestamp(), end.timestamp()
    if at % 900 or stop % 900:
        raise ValueError(f"{start} .. {end} is not on 15-minute boundaries")
    return list(epoch_blocks(int(at), int(stop)))


def is_offset_hour(now: int, last: int) -> bool:
    """Whether [now, last) is one hour from half past that has its own rows (level 'o')."""
    return last - now == 3600 and now % 3600 == 1800 and counters.has_offset_hour(now)


@lru_cache(maxsize=1 << 16)
def epoch_blocks(now: int, last: int, offset: bool = False) -> tuple[Block, ...]:
    """`blocks` of epochs [now, last) (cached: a chart asks for the same buckets again). With
    `offset` (rows without dimension), an hour from half past is its one 'o' block (a bucket of
    an hourly chart in a zone offset by a half hour); only then: as a step of the greedy walk,
    hours from half past would miss the six hours and days after them."""
    length = last - now
    if length in (3600, 86400) and now % length == 0:  # an hour or a day of an UTC chart
        return (("h" if length == 3600 else "d", now),)
    if offset and is_offset_hour(now, last):
        return ((OFFSET_HOUR, now),)
    out: list[Block] = []
    while now < last:
        for level, length in reversed(LEVELS):
            if now % length == 0 and now + length <= last:
                out.append((level, now))
                now += length
                break
    return tuple(out)


async def apply_batch(
    conn: AsyncConnection[Any],
    *,
    while_grouping: Callable[[], Awaitable[None]] | None = None,
    while_merging: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Apply what a range changed in the bitmaps (listeners.sql, from the projection's work
    table of changed sessions, after `verify`).

    The caller's statements that do not touch the bitmaps run while Python works: in pipeline
    mode, `while_grouping` is sent right before Python groups the entering sides into rows,
    `while_merging` right before it merges the rows' bitmaps, and PostgreSQL executes them
    meanwhile (one connection, in order: the sessions `while_grouping` writes are written
    before `batch_rows` probes them)."""
    await conn.execute(_Q.settings)
    await conn.execute(_Q.batch_sides)
    async with conn.cursor(binary=True) as cur:  # (assigning the new listeners' ids first)
        await cur.execute(_Q.entering_sides)
        sides = await cur.fetchall()
    async with conn.pipeline():
        if while_grouping is not None:
            await while_grouping()
        quarters = _quarter_rows(sides)
        del sides
        await conn.execute(_Q.batch_adds, quarters.columns, prepare=False)
        await conn.execute(_Q.batch_add_rows)
        cur = await conn.execute(_Q.any_leaving)
        leaving = (await cur.fetchone() or (False,))[0]
        if leaving:
            await conn.execute(_Q.ensure_listener_index)
        await conn.execute(_Q.batch_rows if leaving else _Q.batch_rows_adding)
        async with conn.cursor(binary=True) as rows:
            await rows.execute(_Q.lock_rows)
            found = await rows.fetchall()
        if while_merging is not None:
            await while_merging()
        stored, new, empty = _merged(found, quarters.ids)
        del found
        if empty:
            await conn.execute(_Q.delete_rows, {"n": empty}, prepare=False)
        if stored["n"]:
            await conn.execute(_Q.upsert_rows, stored, prepare=False)
        if new["n"]:
            await conn.execute(_Q.insert_rows, new, prepare=False)
        await conn.execute(_Q.drop_work_tables)


def _merged(
    found: Iterable[Sequence[Any]], adds: Sequence[BitMap]
) -> tuple[dict[str, list[Any]], dict[str, list[Any]], list[int]]:
    """Each locked row (`lock_rows`) merged with the ids it gains and loses (`adds`: the ids of
    each quarter-hour row, by qn - 1): the rows to write, those stored already (parameters of
    `upsert_rows`) and the new ones (of `insert_rows`: none is stored, the rows being locked and
    the projection their only writer; most rows of a rebuild's page), and the numbers of those
    left empty."""
    stored: dict[str, list[Any]] = {"n": [], "streams": [], "listeners": [], "bitmap": []}
    new: dict[str, list[Any]] = {"n": [], "streams": [], "listeners": [], "bitmap": []}
    empty: list[int] = []
    for n, delta, qn, children, removed, streams, data in found:
        keep = new if data is None else stored
        bitmap = BitMap() if data is None else BitMap.deserialize(data)
        if removed:
            bitmap.difference_update(BitMap(removed))
        if qn is not None:
            bitmap |= adds[qn - 1]
        elif children:
            bitmap |= BitMap.union(*(adds[c - 1] for c in children))
        if not bitmap:
            empty.append(n)
            continue
        keep["n"].append(n)
        keep["streams"].append((streams or 0.0) + delta)
        keep["listeners"].append(len(bitmap))
        keep["bitmap"].append(bitmap.serialize())
    return stored, new, empty


def fill_offset_hours(conn: Connection[Any]) -> int:
    """Derive the rows of level 'o' (hours from half past) from the quarter-hour rows where the
    table predates the level (`lufy migrate`, in its transaction, with the table's schema
    first on the search path): each is the union of its four quarter-hours' bitmaps and the sum
    of their streams, as the projection derives it from a range's quarter-hour rows. Returns
    the number of rows written (0 when there is nothing to derive); the table is analyzed
    after them."""
    if not conn.execute(_Q.offset_hours_missing).fetchone()[0]:  # type: ignore[index]
        return 0
    conn.execute(_Q.lock_bitmaps)
    names = ("scope", "owner", "bucket", "weight", "artist_id", "streams", "listeners", "bitmap")
    rows: dict[str, list[Any]] = {name: [] for name in names}
    written = 0

    def flush() -> None:
        nonlocal written
        if rows["scope"]:
            conn.execute(_Q.insert_offset_hours, rows, prepare=False)
            written += len(rows["scope"])
            for values in rows.values():
                values.clear()

    with conn.cursor("lufy_offset_hours", binary=True) as cur:
        cur.execute(_Q.offset_hour_quarters)
        current: tuple[Any, ...] | None = None
        parts: list[BitMap] = []
        streams, artist = 0.0, None
        for scope, owner, weight, hour, artist_id, quarter_streams, data in cur:
            key = (scope, owner, hour, weight)
            if key != current:
                if current is not None:
                    _offset_row(rows, current, artist, streams, parts)
                    if len(rows["scope"]) >= 5000:
                        flush()
                current, parts, streams, artist = key, [], 0.0, artist_id
            parts.append(BitMap.deserialize(data))
            streams += quarter_streams
        if current is not None:
            _offset_row(rows, current, artist, streams, parts)
    flush()
    conn.execute(_Q.analyze_bitmaps)
    return written


def _offset_row(
    rows: dict[str, list[Any]],
    key: tuple[Any, ...],
    artist: uuid.UUID | None,
    streams: float,
    parts: list[BitMap],
) -> None:
    union = BitMap.union(*parts)
    for name, value in zip(("scope", "owner", "bucket", "weight"), key, strict=True):
        rows[name].append(value)
    rows["artist_id"].append(artist)
    rows["streams"].append(streams)
    rows["listeners"].append(len(union))
    rows["bitmap"].append(union.serialize())


class _Quarters(NamedTuple):
    columns: dict[str, list[Any]]  # the parameters of `batch_adds`
    ids: list[BitMap]  # the ids each row adds, by qn - 1


def _quarter_rows(sides: Iterable[Sequence[Any]]) -> _Quarters:
    """Group the sides entering rows (`entering_sides`) into the quarter-hour rows they add
    to: 9 per side (its track; its artist and the platform, each also by country, device and
    source), each with the streams (sum of weights) and the ids it adds. The keys hold the
    UUIDs as their 16 bytes, as read (`UUID.__hash__` and `__eq__` are Python code: called for
    each of the nine keys of each side, they were most of the grouping's time; and decoding
    them as UUIDs cost as much again), made UUIDs once each at the end; each key's streams and
    ids sit in one entry (one lookup per key). Buckets are epoch seconds."""
    uuids: dict[bytes, uuid.UUID] = {PLATFORM.bytes: PLATFORM}

    def as_uuid(raw: bytes) -> uuid.UUID:
        made = uuids.get(raw)
        if made is None:
            made = uuids[raw] = uuid.UUID(bytes=raw)
        return made

    groups: dict[tuple[Any, ...], list[Any]] = {}  # key -> [streams, ids]
    p = PLATFORM.bytes
    for lid, t, a, bucket, weight, country, device, source in sides:
        for key in (
            ("t", t, "", "", bucket, weight, a),
            ("a", a, "", "", bucket, weight, a),
            ("a", a, "country", country, bucket, weight, a),
            ("a", a, "device", device, bucket, weight, a),
            ("a", a, "source", source, bucket, weight, a),
            ("p", p, "", "", bucket, weight, None),
            ("p", p, "country", country, bucket, weight, None),
            ("p", p, "device", device, bucket, weight, None),
            ("p", p, "source", source, bucket, weight, None),
        ):
            found = groups.get(key)
            if found is None:
                groups[key] = [weight, [lid]]
            else:
                found[0] += weight
                found[1].append(lid)
    columns: dict[str, list[Any]] = {
        name: [] for name in ("qn", "scope", "owner", "dim", "key", "bucket", "weight", "artist_id")
    }
    for qn, (scope, owner, dim, value, bucket, weight, artist_id) in enumerate(groups, 1):
        columns["qn"].append(qn)
        columns["scope"].append(scope)
        columns["owner"].append(as_uuid(owner))
        columns["dim"].append(dim)
        columns["key"].append(value)
        columns["bucket"].append(bucket)
        columns["weight"].append(weight)
        columns["artist_id"].append(None if artist_id is None else as_uuid(artist_id))
    columns["streams"] = [found[0] for found in groups.values()]
    return _Quarters(columns, [BitMap(found[1]) for found in groups.values()])


# One group as read (listeners.sql, `read_groups`): (bucket index or -1, owner, key, number of
# rows, count when alone, streams, its rows as text: version, level, epoch and weight of each,
# then the versions, bytes and artist of the rows whose bytes came, or None).
GroupRow = tuple[Any, ...]


class Read:
    """The rows of some blocks in one scope, grouped per bucket, owner or key, queued by `send`
    and collected by `groups`."""

    def __init__(self, cache: BitmapCache, scope: str, dim: str, artist: uuid.UUID | None) -> None:
        self.cache, self.scope, self.dim, self.artist = cache, scope, dim, artist
        self.cursor: AsyncCursor[Any] | None = None
        self.known: dict[str, BitMap] = {}

    async def send(
        self,
        conn: AsyncConnection[Any],
        owners: Sequence[uuid.UUID] | None,
        wanted: Collection[Block],
        levels: dict[str, Any],
        grouping: dict[str, Any],
    ) -> Read:
        """Queue the read of every row of `wanted` blocks (`levels`: the same as
        `counters.level_arrays`; owners None = every owner, of the artist when given), grouped
        as `grouping` says (`by_bucket`, `step`, `first`, `epochs`: the buckets, see
        `Grid.grouping`; `edges`: whether the range has unaligned edges), without the bytes of
        the versions the cache holds."""
        if not wanted:
            return self
        # A copy: `members` adds what it decodes.
        held = self.cache.known(self.scope, self.dim, wanted, owners, self.artist)
        self.known = dict(held)
        self.cursor = conn.cursor(binary=True)
        await self.cursor.execute(
            _Q.read_groups,
            {
                "scope": self.scope,
                "owners": list(owners) if owners is not None else None,
                "artist": self.artist,
                "dim": self.dim,
                "known": self.cache.known_text(held),
                **counters.day_rows(self.artist),
                **levels,
                **grouping,
            },
            prepare=False,
        )
        return self

    async def groups(self) -> list[GroupRow]:
        return list(await self.cursor.fetchall()) if self.cursor is not None else []

    def count(self, row: GroupRow) -> float:
        """Distinct listeners of a group: its stored count when it has one row, else the count
        of the union of its rows (kept by their versions: a function of them)."""
        if row[3] == 1:
            return float(row[4])
        found = self.cache.count_of(row[6])
        if found is None:
            found = weighted_count(self.members(row))
            self.cache.keep_count(row[6], found)
        return found

    def members(self, row: GroupRow) -> list[tuple[float, BitMap]]:
        """The (weight, bitmap) of each row of a group (decoded, or taken from the cache)."""
        _, owner, _, _, _, _, text, versions, data, artist = row
        came = dict(zip(versions, data, strict=True)) if versions is not None else {}
        words = text.split(" ")
        out = []
        for j in range(0, len(words), 4):
            version, level, epoch, weight = words[j : j + 4]
            found = self.known.get(version)
            if found is None:
                place = (self.scope, self.dim, level, int(epoch))
                found = self.known[version] = self.cache.add(
                    version, place, owner, artist, came[version]
                )
            out.append((float(weight), found))
        return out


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
