"""The dashboard's reads, one request = one pipeline of queries (lufy/analytics/dashboard.py).

A route asks for one or more *windows* (a range split into buckets, for the artist, a track or
everyone). Each window queues its queries on the connection (counters from the rollups, listener
bitmaps of its aligned blocks, the sessions of its unaligned edges) without waiting; the route
then collects them all, so a request costs one round trip to PostgreSQL whatever it asks.

Distinct listeners per group (bucket, track, dimension key) come from the bitmap rows of the
group's blocks, grouped in PostgreSQL (one result row per group): one row alone is counted from
its stored size (no bitmap travels or is decoded), several are decoded and unioned
(`listeners.weighted_count`) unless the count of that union of row versions is cached.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from psycopg import AsyncConnection, AsyncCursor
from pyroaring import BitMap

from lufy.analytics import counters
from lufy.analytics import listeners as bitmaps
from lufy.analytics.bitmap_cache import BitmapCache
from lufy.analytics.grid import Grid
from lufy.analytics.schemas import Metrics
from lufy.errors import PermissionDeniedError
from lufy.identity import Principal
from lufy.sqlfiles import load_queries

__all__ = ["METRICS", "Scope", "Sums", "Window", "num"]

_Q = load_queries("lufy.analytics", "dashboard.sql")
# The overview's metrics, then the counts some timeseries also offer.
METRICS = (*(f.name for f in msgspec.structs.fields(Metrics)), "starts", "completions", "skips")


@dataclass(frozen=True)
class Scope:
    """Whose numbers: the caller's RLS identity and the artist filter."""

    user_id: uuid.UUID
    role: str
    artist_id: uuid.UUID | None

    @classmethod
    def of(cls, principal: Principal, artist_id: uuid.UUID | None) -> Scope:
        if principal.role == "admin":
            return cls(principal.user_id, "admin", artist_id)
        if principal.role != "artist":
            raise PermissionDeniedError("the dashboard is for artists and admins")
        if artist_id is not None and artist_id != principal.user_id:
            raise PermissionDeniedError("an artist sees only their own numbers")
        return cls(principal.user_id, "artist", principal.user_id)


def num(value: float) -> float:
    """Integral sums as ints in JSON (a count of 12, not 12.0)."""
    return int(value) if float(value).is_integer() else value


class Sums:
    __slots__ = (
        "completions",
        "followers",
        "likes",
        "listen_ms",
        "listeners",
        "skips",
        "starts",
        "streams",
    )

    def __init__(self) -> None:
        self.streams = self.listen_ms = self.starts = self.completions = self.skips = 0.0
        self.likes = self.followers = self.listeners = 0.0

    def add(self, row: Sequence[Any]) -> None:
        self.streams += row[0] or 0
        self.listen_ms += row[1] or 0
        self.starts += row[2] or 0
        self.completions += row[3] or 0
        self.skips += row[4] or 0
        self.likes += row[5] or 0
        self.followers += row[6] or 0

    def value(self, metric: str) -> float:
        if metric == "listen_seconds":
            return num(self.listen_ms / 1000)
        if metric == "completion_rate":
            return self.completions / self.starts if self.starts else 0
        if metric == "skip_rate":
            return self.skips / self.starts if self.starts else 0
        return num(float(getattr(self, metric)))

    def metrics(self) -> Metrics:
        return Metrics(**{m: self.value(m) for m in METRICS[:7]})


class Listeners:
    """Distinct listeners of groups: the group's bitmap rows of its aligned blocks (one row of
    `listeners.Read.groups` per group) plus the ids of the stream sessions in the range's
    unaligned edges."""

    def __init__(self, read: bitmaps.Read | None) -> None:
        self.read = read
        self.rows: dict[Any, bitmaps.GroupRow] = {}
        self.streams: dict[Any, float] = defaultdict(float)
        self._edges: dict[Any, dict[float, BitMap]] = defaultdict(dict)

    def add_row(self, group: Any, row: bitmaps.GroupRow) -> None:
        self.rows[group] = row
        self.streams[group] += row[5]

    def add_edge(self, group: Any, weight: float, listener_id: int) -> None:
        self._edges[group].setdefault(weight, BitMap()).add(listener_id)
        self.streams[group] += weight

    def count(self, group: Any) -> float:
        row = self.rows.get(group)
        edges = self._edges.get(group)
        if not edges:
            return 0.0 if row is None or self.read is None else self.read.count(row)
        members = [] if row is None or self.read is None else self.read.members(row)
        members += list(edges.items())
        return bitmaps.weighted_count(members)

    def groups(self) -> set[Any]:
        return set(self.rows) | set(self._edges)


def owner_rows(scope: Scope, track: uuid.UUID | None) -> tuple[str, list[uuid.UUID]]:
    """Which bitmap rows hold the listeners of this scope (and track)."""
    if track is not None:
        return "t", [track]
    if scope.artist_id is not None:
        return "a", [scope.artist_id]
    return "p", [bitmaps.PLATFORM]


class Window:
    """A grid (a range cut into buckets) for one scope (and track): its queries, queued on a
    connection (in a pipeline) by `send`, collected by the methods after it."""

    def __init__(self, cells: Grid, scope: Scope, track: uuid.UUID | None = None) -> None:
        self.grid = cells
        self.scope = scope
        self.track = track
        self.params: dict[str, Any] = {
            "from": cells.start,
            "to": cells.end,
            "mid_from": cells.mid_from,
            "mid_to": cells.mid_to,
            # The buckets (`step` and `first`, or `epochs`: see `Grid.grouping`).
            **cells.grouping,
            "artist": scope.artist_id,
            "track": track,
        }
        self._cursors: dict[str, AsyncCursor[Any]] = {}
        self._read: bitmaps.Read | None = None
        self._group_by = ""

    def _rows_of(
        self, by: str
    ) -> tuple[str, list[uuid.UUID] | None, list[bitmaps.Block], frozenset[bitmaps.Block], Any]:
        """Scope, owners and blocks (sorted, as a set, as `counters.level_arrays`) of the
        pre-aggregated rows grouped `by` buckets, tracks or keys."""
        owners: list[uuid.UUID] | None
        if by == "buckets":
            kind, owners = owner_rows(self.scope, self.track)
            wanted, wanted_set, levels = self.grid.wanted
        else:
            kind, owners = ("t", None) if by == "tracks" else owner_rows(self.scope, None)
            wanted, wanted_set, levels = self.grid.middle
        return kind, owners, wanted, wanted_set, levels

    async def send(
        self,
        conn: AsyncConnection[Any],
        cache: BitmapCache,
        *,
        sums: str | None = "sums",
        listeners: str | None = None,
        dim: str = "",
    ) -> Window:
        """Queue the counters (`sums`: per bucket, `track_sums`: per track) and, with
        `listeners` ('buckets': one group per bucket, 'tracks': one per track, 'keys': one per
        key of `dim`), the bitmap rows (the bytes of those `cache` does not hold) and edge
        sessions."""
        if sums is not None:
            # Likes, follows and the unaligned edges from the rollups and rows; the rest from
            # the counters of the aligned blocks.
            self._cursors["sums"] = await conn.execute(
                getattr(_Q, sums), self.params, prepare=False
            )
            by = "tracks" if sums == "track_sums" else "buckets"
            kind, owners, wanted, _, levels = self._rows_of(by)
            if wanted:
                self._cursors["counters"] = await counters.send_read(
                    conn,
                    scope=kind,
                    owners=owners,
                    artist=self.scope.artist_id,
                    levels=levels,
                    grouping=self.grid.groups_by(by),
                )
        if listeners is None:
            return self
        self._group_by = listeners
        kind, owners, wanted, wanted_set, levels = self._rows_of(listeners)
        self._read = await bitmaps.Read(cache, kind, dim, self.scope.artist_id).send(
            conn, owners, wanted_set, levels, self.grid.groups_by(listeners)
        )
        if self.grid.has_edges:
            self._cursors["edges"] = await conn.execute(
                bitmaps.EDGE_LISTENERS, {**self.params, "dim": dim}, prepare=False
            )
        return self

    async def per_track(self) -> tuple[dict[uuid.UUID, Sums], dict[uuid.UUID, str | None]]:
        """Counters per track (after `send(sums="track_sums")`), and the titles read."""
        out: dict[uuid.UUID, Sums] = {}
        titles: dict[uuid.UUID, str | None] = {}
        for row in await self.rows("sums"):
            out.setdefault(row[0], Sums()).add(row[2:])
            titles[row[0]] = row[1]
        for owner, _, *values in await self.rows("counters"):
            out.setdefault(owner, Sums()).add((*values, 0, 0))
        return out, titles

    async def rows(self, name: str) -> list[tuple[Any, ...]]:
        cur = self._cursors.get(name)
        return list(await cur.fetchall()) if cur is not None else []

    async def series(self) -> dict[int, Sums]:
        """Counters per bucket (and listeners, when asked): only the buckets with any rows
        (the others are all zero)."""
        out: dict[int, Sums] = {}
        for row in await self.rows("sums"):
            _sums(out, row[0] - 1).add(row[1:])
        for _owner, i, *values in await self.rows("counters"):
            _sums(out, i).add((*values, 0, 0))
        if self._read is not None:
            acc = await self.listeners()
            for i in acc.groups():
                _sums(out, i).listeners = acc.count(i)
        return out

    async def listeners(self) -> Listeners:
        """The listener accumulator of the groups asked for in `send`."""
        acc = Listeners(self._read)
        found = await self._read.groups() if self._read is not None else []
        # Each row is a group: a bucket (its index), a track (its owner) or a key.
        column = {"buckets": 0, "tracks": 1}.get(self._group_by, 2)
        for row in found:
            acc.add_row(row[column], row)
        for track, listener_id, weight, key, b in await self.rows("edges"):
            group = {"buckets": b - 1, "tracks": track}.get(self._group_by, key)
            acc.add_edge(group, float(weight), int(listener_id))
        return acc


def _sums(out: dict[int, Sums], i: int) -> Sums:
    found = out.get(i)
    if found is None:
        found = out[i] = Sums()
    return found
