"""Dashboard metrics (CONTRACT.md sections 3 and 4), read from the live analytics read models.

Artists see their own tracks (Row-Level Security, plus an explicit filter so indexes apply);
admins see everything or one artist with `artist_id`.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lufy.analytics import minutes
from lufy.analytics.bitmap_cache import BitmapCache
from lufy.analytics.dashboard_reads import METRICS, Scope, Sums, Window, num
from lufy.analytics.grid import Grid, grid
from lufy.analytics.periods import BadQueryError, Period, resolve_period, zone
from lufy.analytics.schemas import (
    BreakdownResponse,
    BreakdownRow,
    Overview,
    Point,
    RealtimeResponse,
    TimeseriesResponse,
    TrackRow,
    TracksResponse,
)
from lufy.db import Database
from lufy.sqlfiles import load_queries

__all__ = ["METRICS", "Dashboard", "Query", "Scope"]

_Q = load_queries("lufy.analytics", "dashboard.sql")
SORTS = ("streams", "listeners", "listen_seconds", "completion_rate", "skip_rate", "likes")
DIMENSIONS = ("country", "device", "source")
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Query:
    """The common query parameters of every dashboard route."""

    range: str | None = None
    from_: str | None = None
    to: str | None = None
    tz: str | None = None


class Dashboard:
    def __init__(
        self, db: Database, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.db = db
        self.clock = clock
        # Decoded listener bitmaps of this database, reused while their rows do not change.
        self.bitmaps = BitmapCache()

    def period(self, query: Query) -> Period:
        return resolve_period(query.range, query.from_, query.to, query.tz, self.clock())

    async def overview(self, scope: Scope, query: Query) -> Overview:
        period = self.period(query)
        now = Window(grid(period.start, period.end, period.tz, None), scope)
        before = Window(grid(period.previous_start, period.previous_end, period.tz, None), scope)
        async with (
            self.db.transaction(user_id=scope.user_id, role=scope.role) as conn,
            conn.pipeline(),
        ):
            for window in (now, before):
                await window.send(conn, self.bitmaps, listeners="buckets")
            current = (await now.series()).get(0, Sums())
            previous = (await before.series()).get(0, Sums())
        metrics = current.metrics()
        return Overview(
            **{m: getattr(metrics, m) for m in METRICS[:7]}, previous=previous.metrics()
        )

    async def timeseries(
        self,
        scope: Scope,
        query: Query,
        *,
        metrics: Sequence[str],
        granularity: str | None,
        track_id: uuid.UUID | None,
    ) -> tuple[Grid, dict[int, Sums]]:
        """The grid of buckets and the sums of those with any data (the others are zero), for
        `metrics` (listeners alone need no counters)."""
        for metric in metrics:
            if metric not in METRICS:
                raise BadQueryError(f"metric: {metric!r} is not one of {', '.join(METRICS)}")
        period = self.period(query)
        grain = granularity or period.default_granularity
        if grain not in ("hour", "day", "week", "month"):
            raise BadQueryError(f"granularity: {grain!r} is not one of hour, day, week, month")
        window = Window(grid(period.start, period.end, period.tz, grain), scope, track_id)
        async with (
            self.db.transaction(user_id=scope.user_id, role=scope.role) as conn,
            conn.pipeline(),
        ):
            await window.send(
                conn,
                self.bitmaps,
                sums=None if list(metrics) == ["listeners"] else "sums",
                listeners="buckets" if "listeners" in metrics else None,
            )
            sums = await window.series()
        return window.grid, sums

    async def timeseries_points(
        self,
        scope: Scope,
        query: Query,
        *,
        metric: str,
        granularity: str | None,
        track_id: uuid.UUID | None,
    ) -> TimeseriesResponse:
        cells, sums = await self.timeseries(
            scope, query, metrics=[metric], granularity=granularity, track_id=track_id
        )
        points = list(cells.zeros)
        labels = cells.labels
        for i, s in sums.items():
            points[i] = Point(labels[i], s.value(metric))
        return TimeseriesResponse(points=points)

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
        cells, sums = await self.timeseries(
            scope, query, metrics=columns, granularity=granularity, track_id=track_id
        )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["t", *columns])
        zero = [0] * len(columns)
        for i, label in enumerate(cells.labels):
            s = sums.get(i)
            writer.writerow([label, *(zero if s is None else (s.value(c) for c in columns))])
        return out.getvalue()

    async def tracks(self, scope: Scope, query: Query, *, sort: str, limit: int) -> TracksResponse:
        if sort not in SORTS:
            raise BadQueryError(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
        if not 1 <= limit <= 500:
            raise BadQueryError("limit: must be between 1 and 500")
        period = self.period(query)
        window = Window(grid(period.start, period.end, period.tz, None), scope)
        async with (
            self.db.transaction(user_id=scope.user_id, role=scope.role) as conn,
            conn.pipeline(),
        ):
            await window.send(conn, self.bitmaps, sums="track_sums", listeners="tracks")
            named = None
            if scope.artist_id is not None:
                named = await conn.execute(_Q.artist_titles, {"artist": scope.artist_id})
            per_track, titles = await window.per_track()
            if named is not None:
                titles.update(dict(await named.fetchall()))
            acc = await window.listeners()
            for track_id in acc.groups():
                per_track.setdefault(track_id, Sums()).listeners = acc.count(track_id)
            ranked = sorted(per_track.items(), key=lambda kv: (-kv[1].value(sort), str(kv[0])))[
                :limit
            ]
            missing = [k for k, _ in ranked if k not in titles]
            if missing:
                cur = await conn.execute(_Q.track_titles, {"ids": missing})
                titles.update(dict(await cur.fetchall()))
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
        window = Window(grid(period.start, period.end, period.tz, None), scope)
        async with (
            self.db.transaction(user_id=scope.user_id, role=scope.role) as conn,
            conn.pipeline(),
        ):
            await window.send(conn, self.bitmaps, sums=None, listeners="keys", dim=dimension)
            acc = await window.listeners()
        keyed = [(key, acc.streams[key], acc.count(key)) for key in acc.groups()]
        keyed.sort(key=lambda r: (-r[1], r[0]))
        return BreakdownResponse(
            rows=[BreakdownRow(key, num(streams), num(w)) for key, streams, w in keyed]
        )

    async def realtime(self, scope: Scope, tz: str | None) -> RealtimeResponse:
        """Streams per minute over the last 30 minutes (the current minute included), from the
        streams per minute the projection keeps (lufy/analytics/minutes.py)."""
        local = zone(tz)
        end = self.clock().astimezone(UTC).replace(second=0, microsecond=0) + _MINUTE
        start = end - 30 * _MINUTE
        async with (
            self.db.transaction(user_id=scope.user_id, role=scope.role) as conn,
            conn.pipeline(),
        ):
            per_minute = await minutes.read(conn, scope.artist_id, start, end)
        first = int(start.timestamp())
        return RealtimeResponse(
            points=[
                Point(
                    (start + n * _MINUTE).astimezone(local).isoformat(),
                    num(per_minute.get(first + 60 * n, 0.0)),
                )
                for n in range(30)
            ]
        )
