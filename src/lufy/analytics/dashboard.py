"""Dashboard metrics (CONTRACT.md sections 3 and 4), read from the live analytics read models.

Artists see their own tracks (Row-Level Security, plus an explicit filter so indexes apply);
admins see everything or one artist with `artist_id`.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lufy.analytics.bitmap_cache import BitmapCache
from lufy.analytics.dashboard_reads import METRICS, Scope, Sums, Window, num
from lufy.analytics.periods import BadQueryError, Period, boundaries, resolve_period
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
        now = Window(period.start, period.end, [period.start, period.end], scope)
        before = Window(
            period.previous_start,
            period.previous_end,
            [period.previous_start, period.previous_end],
            scope,
        )
        async with (
            self.db.transaction(user_id=scope.user_id, role=scope.role) as conn,
            conn.pipeline(),
        ):
            for window in (now, before):
                await window.send(conn, self.bitmaps, listeners="buckets")
            (current,) = await now.series()
            (previous,) = await before.series()
        metrics = current.metrics()
        return Overview(
            **{m: getattr(metrics, m) for m in METRICS[:7]}, previous=previous.metrics()
        )

    async def timeseries(
        self,
        scope: Scope,
        query: Query,
        *,
        metric: str,
        granularity: str | None,
        track_id: uuid.UUID | None,
    ) -> tuple[list[str], list[Sums]]:
        if metric not in METRICS:
            raise BadQueryError(f"metric: {metric!r} is not one of {', '.join(METRICS)}")
        period = self.period(query)
        grain = granularity or period.default_granularity
        if grain not in ("hour", "day", "week", "month"):
            raise BadQueryError(f"granularity: {grain!r} is not one of hour, day, week, month")
        bounds = boundaries(period.start, period.end, period.tz, grain)
        window = Window(period.start, period.end, bounds, scope, track_id)
        async with (
            self.db.transaction(user_id=scope.user_id, role=scope.role) as conn,
            conn.pipeline(),
        ):
            await window.send(
                conn, self.bitmaps, listeners="buckets" if metric == "listeners" else None
            )
            sums = await window.series()
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
        window = Window(period.start, period.end, [period.start, period.end], scope)
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
        window = Window(period.start, period.end, [period.start, period.end], scope)
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
        """Streams per minute over the last 30 minutes (the current minute included)."""
        period = resolve_period("1d", None, None, tz, self.clock())
        now = self.clock().astimezone(UTC)
        end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(minutes=30)
        bounds = boundaries(start, end, period.tz, "minute")
        window = Window(start, end, bounds, scope)
        async with self.db.transaction(user_id=scope.user_id, role=scope.role) as conn:
            sums = await (await window.send(conn, self.bitmaps)).series()
        return RealtimeResponse(
            points=[
                Point(b.astimezone(period.tz).isoformat(), s.value("streams"))
                for b, s in zip(bounds, sums, strict=False)
            ]
        )
