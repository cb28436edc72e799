"""Dashboard metrics (CONTRACT.md sections 3 and 4), read from the live analytics read models.

Artists see their own tracks (Row-Level Security, plus an explicit filter so indexes apply);
admins see everything or one artist with `artist_id`.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from pyroaring import BitMap

from lufy.analytics import listeners as bitmaps
from lufy.analytics.periods import BadQueryError, Period, boundaries, resolve_period
from lufy.analytics.schemas import (
    BreakdownResponse,
    BreakdownRow,
    Metrics,
    Overview,
    Point,
    RealtimeResponse,
    TimeseriesResponse,
    TrackRow,
    TracksResponse,
)
from lufy.db import Database
from lufy.errors import PermissionDeniedError
from lufy.identity import Principal
from lufy.sqlfiles import load_queries

__all__ = ["METRICS", "Dashboard", "Query", "Scope"]

_Q = load_queries("lufy.analytics", "dashboard.sql")
METRICS = (
    "streams",
    "listeners",
    "listen_seconds",
    "completion_rate",
    "skip_rate",
    "likes",
    "followers",
    "starts",
    "completions",
    "skips",
)
SORTS = ("streams", "listeners", "listen_seconds", "completion_rate", "skip_rate", "likes")
DIMENSIONS = ("country", "device", "source")
_QUARTER = timedelta(minutes=15)


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


@dataclass(frozen=True)
class Query:
    """The common query parameters of every dashboard route."""

    range: str | None = None
    from_: str | None = None
    to: str | None = None
    tz: str | None = None


def _num(value: float) -> float:
    """Integral sums as ints in JSON (a count of 12, not 12.0)."""
    return int(value) if float(value).is_integer() else value


def _floor15(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)


def _ceil15(moment: datetime) -> datetime:
    floor = _floor15(moment)
    return floor if floor == moment else floor + _QUARTER


def _params(
    start: datetime,
    end: datetime,
    bounds: list[datetime],
    scope: Scope,
    track: uuid.UUID | None = None,
) -> dict[str, Any]:
    mid_from, mid_to = _ceil15(start), _floor15(end)
    aligned = all(_floor15(b) == b for b in bounds[1:-1])
    if mid_from >= mid_to or not aligned:
        # Nothing aligned to read from the rollups: read every row one by one.
        mid_from = mid_to = end
    return {
        "from": start,
        "to": end,
        "mid_from": mid_from,
        "mid_to": mid_to,
        "bounds": bounds,
        "artist": scope.artist_id,
        "track": track,
    }


def _scope_rows(scope: Scope, track: uuid.UUID | None) -> tuple[str, list[uuid.UUID]]:
    """Which bitmap rows hold the listeners of this scope (and track)."""
    if track is not None:
        return "t", [track]
    if scope.artist_id is not None:
        return "a", [scope.artist_id]
    return "p", [bitmaps.PLATFORM]


def _aligned_blocks(params: dict[str, Any], start: datetime, end: datetime) -> list[bitmaps.Block]:
    """The bitmap blocks of [start, end) inside the range's 15-minute-aligned middle."""
    lo, hi = max(start, params["mid_from"]), min(end, params["mid_to"])
    return bitmaps.blocks(lo, hi) if lo < hi else []


class _Listeners:
    """Distinct listeners of groups (buckets, tracks, dimension keys): bitmap rows of their
    aligned blocks plus the ids of the stream sessions in the range's unaligned edges."""

    def __init__(self) -> None:
        self.members: dict[Any, list[tuple[float, BitMap]]] = defaultdict(list)
        self.streams: dict[Any, float] = defaultdict(float)
        self._edges: dict[tuple[Any, float], BitMap] = defaultdict(BitMap)

    def add_row(self, group: Any, weight: float, streams: float, bitmap: BitMap) -> None:
        self.members[group].append((weight, bitmap))
        self.streams[group] += streams

    def add_edge(self, group: Any, weight: float, listener_id: int) -> None:
        self._edges[(group, weight)].add(listener_id)
        self.streams[group] += weight

    def count(self, group: Any) -> float:
        members = list(self.members.get(group, ()))
        members += [(w, bm) for (g, w), bm in self._edges.items() if g == group]
        return bitmaps.weighted_count(members)

    def groups(self) -> set[Any]:
        return set(self.members) | {g for g, _ in self._edges}


async def _edge_rows(
    conn: AsyncConnection[Any], params: dict[str, Any], dim: str = ""
) -> Sequence[tuple[Any, ...]]:
    """(track_id, listener id, weight, dimension key, bucket number) of edge stream sessions."""
    if params["mid_from"] == params["from"] and params["mid_to"] == params["to"]:
        return []
    cur = await conn.execute(bitmaps.EDGE_LISTENERS, {**params, "dim": dim}, prepare=False)
    return await cur.fetchall()


class _Sums:
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

    def add(self, row: tuple[Any, ...]) -> None:
        self.streams += row[0] or 0
        self.listen_ms += row[1] or 0
        self.starts += row[2] or 0
        self.completions += row[3] or 0
        self.skips += row[4] or 0
        self.likes += row[5] or 0
        self.followers += row[6] or 0

    def value(self, metric: str) -> float:
        if metric == "listen_seconds":
            return _num(self.listen_ms / 1000)
        if metric == "completion_rate":
            return self.completions / self.starts if self.starts else 0
        if metric == "skip_rate":
            return self.skips / self.starts if self.starts else 0
        return _num(float(getattr(self, metric)))

    def metrics(self) -> Metrics:
        return Metrics(**{m: self.value(m) for m in METRICS[:7]})


class Dashboard:
    def __init__(
        self, db: Database, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.db = db
        self.clock = clock

    def period(self, query: Query) -> Period:
        return resolve_period(query.range, query.from_, query.to, query.tz, self.clock())

    async def _series(
        self,
        conn: AsyncConnection[Any],
        start: datetime,
        end: datetime,
        bounds: list[datetime],
        scope: Scope,
        track: uuid.UUID | None = None,
        *,
        listeners: bool = True,
    ) -> list[_Sums]:
        params = _params(start, end, bounds, scope, track)
        out = [_Sums() for _ in bounds[:-1]]
        cur = await conn.execute(_Q.sums, params, prepare=False)
        for row in await cur.fetchall():
            out[row[0] - 1].add(row[1:])
        if listeners:
            kind, owners = _scope_rows(scope, track)
            per_bucket = [
                _aligned_blocks(params, bounds[i], bounds[i + 1]) for i in range(len(out))
            ]
            wanted = sorted({b for blocks in per_bucket for b in blocks})
            rows = await bitmaps.read_blocks(
                conn, scope=kind, owners=owners, artist=scope.artist_id, dim="", wanted=wanted
            )
            found: dict[bitmaps.Block, list[tuple[float, BitMap]]] = defaultdict(list)
            for _, _, block, weight, _, bitmap in rows:
                found[block].append((weight, bitmap))
            acc = _Listeners()
            for i, blocks in enumerate(per_bucket):
                for block in blocks:
                    for weight, bitmap in found.get(block, ()):
                        acc.add_row(i, weight, 0.0, bitmap)
            for _track, listener_id, weight, _key, b in await _edge_rows(conn, params):
                acc.add_edge(b - 1, float(weight), int(listener_id))
            for i in acc.groups():
                out[i].listeners = acc.count(i)
        return out

    async def overview(self, scope: Scope, query: Query) -> Overview:
        period = self.period(query)
        async with self.db.transaction(user_id=scope.user_id, role=scope.role) as conn:
            (now,) = await self._series(
                conn, period.start, period.end, [period.start, period.end], scope
            )
            (before,) = await self._series(
                conn,
                period.previous_start,
                period.previous_end,
                [period.previous_start, period.previous_end],
                scope,
            )
        current = now.metrics()
        return Overview(**{m: getattr(current, m) for m in METRICS[:7]}, previous=before.metrics())

    async def timeseries(
        self,
        scope: Scope,
        query: Query,
        *,
        metric: str,
        granularity: str | None,
        track_id: uuid.UUID | None,
    ) -> tuple[list[str], list[_Sums]]:
        if metric not in METRICS:
            raise BadQueryError(f"metric: {metric!r} is not one of {', '.join(METRICS)}")
        period = self.period(query)
        grain = granularity or period.default_granularity
        if grain not in ("hour", "day", "week", "month"):
            raise BadQueryError(f"granularity: {grain!r} is not one of hour, day, week, month")
        bounds = boundaries(period.start, period.end, period.tz, grain)
        async with self.db.transaction(user_id=scope.user_id, role=scope.role) as conn:
            sums = await self._series(
                conn,
                period.start,
                period.end,
                bounds,
                scope,
                track_id,
                listeners=metric in ("listeners", "*"),
            )
        labels = [b.astimezone(period.tz).isoformat() for b in bounds[:-1]]
        return labels, sums

    async def timeseries_points(
        self,
        scope: Scope,
        query: Query,
        *,
        metric: str,
        granularity: str | None,
        track_id: uuid.UUID | None,
    ) -> TimeseriesResponse:
        labels, sums = await self.timeseries(
            scope, query, metric=metric, granularity=granularity, track_id=track_id
        )
        return TimeseriesResponse(
            points=[Point(t, s.value(metric)) for t, s in zip(labels, sums, strict=True)]
        )

    async def export_csv(
        self,
        scope: Scope,
        query: Query,
        *,
        metric: str | None,
        granularity: str | None,
        track_id: uuid.UUID | None,
    ) -> str:
        columns = [metric] if metric else list(METRICS[:7])
        for name in columns:
            if name not in METRICS:
                raise BadQueryError(f"metric: {name!r} is not one of {', '.join(METRICS)}")
        labels, sums = await self.timeseries(
            scope,
            query,
            metric="listeners" if "listeners" in columns else columns[0],
            granularity=granularity,
            track_id=track_id,
        )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["t", *columns])
        for label, s in zip(labels, sums, strict=True):
            writer.writerow([label, *(s.value(c) for c in columns)])
        return out.getvalue()

    async def tracks(self, scope: Scope, query: Query, *, sort: str, limit: int) -> TracksResponse:
        if sort not in SORTS:
            raise BadQueryError(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
        if not 1 <= limit <= 500:
            raise BadQueryError("limit: must be between 1 and 500")
        period = self.period(query)
        params = _params(period.start, period.end, [period.start, period.end], scope)
        per_track: dict[uuid.UUID, _Sums] = {}
        async with self.db.transaction(user_id=scope.user_id, role=scope.role) as conn:
            cur = await conn.execute(_Q.track_sums, params, prepare=False)
            for row in await cur.fetchall():
                per_track.setdefault(row[0], _Sums()).add(row[1:])
            acc = _Listeners()
            track_rows = await bitmaps.read_blocks(
                conn,
                scope="t",
                owners=None,
                artist=scope.artist_id,
                dim="",
                wanted=_aligned_blocks(params, period.start, period.end),
            )
            for track_id, _key, _block, weight, _streams, bitmap in track_rows:
                acc.add_row(track_id, weight, 0.0, bitmap)
            for track_id, listener_id, weight, _key, _b in await _edge_rows(conn, params):
                acc.add_edge(track_id, float(weight), int(listener_id))
            for track_id in acc.groups():
                per_track.setdefault(track_id, _Sums()).listeners = acc.count(track_id)
            ranked = sorted(per_track.items(), key=lambda kv: (-kv[1].value(sort), str(kv[0])))[
                :limit
            ]
            cur = await conn.execute(_Q.track_titles, {"ids": [k for k, _ in ranked]})
            titles = dict(await cur.fetchall())
        rows = []
        for track_id, sums in ranked:
            metrics = sums.metrics()
            rows.append(
                TrackRow(
                    track_id=track_id,
                    title=titles.get(track_id),
                    **{m: getattr(metrics, m) for m in METRICS[:7]},
                )
            )
        return TracksResponse(rows=rows)

    async def breakdown(self, scope: Scope, query: Query, *, dimension: str) -> BreakdownResponse:
        if dimension not in DIMENSIONS:
            raise BadQueryError(f"dimension: {dimension!r} is not one of {', '.join(DIMENSIONS)}")
        period = self.period(query)
        params = _params(period.start, period.end, [period.start, period.end], scope)
        kind, owners = _scope_rows(scope, None)
        acc = _Listeners()
        async with self.db.transaction(user_id=scope.user_id, role=scope.role) as conn:
            rows = await bitmaps.read_blocks(
                conn,
                scope=kind,
                owners=owners,
                artist=scope.artist_id,
                dim=dimension,
                wanted=_aligned_blocks(params, period.start, period.end),
            )
            for _owner, key, _block, weight, streams, bitmap in rows:
                acc.add_row(key, weight, streams, bitmap)
            for _track, listener_id, weight, key, _b in await _edge_rows(conn, params, dimension):
                acc.add_edge(key, float(weight), int(listener_id))
        keyed = [(key, acc.streams[key], acc.count(key)) for key in acc.groups()]
        keyed.sort(key=lambda r: (-r[1], r[0]))
        return BreakdownResponse(
            rows=[BreakdownRow(key, _num(streams), _num(w)) for key, streams, w in keyed]
        )

    async def realtime(self, scope: Scope, tz: str | None) -> RealtimeResponse:
        """Streams per minute over the last 30 minutes (the current minute included)."""
        period = resolve_period("1d", None, None, tz, self.clock())
        now = self.clock().astimezone(UTC)
        end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(minutes=30)
        bounds = boundaries(start, end, period.tz, "minute")
        async with self.db.transaction(user_id=scope.user_id, role=scope.role) as conn:
            sums = await self._series(conn, start, end, bounds, scope, listeners=False)
        return RealtimeResponse(
            points=[
                Point(b.astimezone(period.tz).isoformat(), s.value("streams"))
                for b, s in zip(bounds, sums, strict=False)
            ]
        )
