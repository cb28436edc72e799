"""`/api/dashboard`: an artist's numbers (an admin's: everyone's, or one artist's)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from lufy.analytics.dashboard import Dashboard, Query, Scope
from lufy.analytics.schemas import (
    BreakdownResponse,
    Overview,
    RealtimeResponse,
    TimeseriesResponse,
    TracksResponse,
)
from lufy.web.auth import Principal

__all__ = ["ROUTES"]

_Range = Annotated[
    str | None,
    QueryParameter(description="7d, 28d, 90d (any Nd), 24h or 12m; the default is 28d"),
]
_From = Annotated[
    str | None,
    QueryParameter(
        name="from",
        description="a date (inclusive, calendar day in tz) or an RFC 3339 instant (half-open)",
    ),
]
_To = Annotated[str | None, QueryParameter(description="a date (inclusive) or an RFC 3339 instant")]
_Tz = Annotated[str | None, QueryParameter(description="IANA time zone; the default is UTC")]
_Artist = Annotated[uuid.UUID | None, QueryParameter(description="admins only: one artist")]
_TAGS = ["dashboard"]


@get("/api/dashboard/overview", tags=_TAGS, summary="Totals of the period and the one before")
async def overview(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    range: _Range = None,
    from_: _From = None,
    to: _To = None,
    tz: _Tz = None,
    artist_id: _Artist = None,
) -> Overview:
    return await dashboard.overview(Scope.of(principal, artist_id), Query(range, from_, to, tz))


@get("/api/dashboard/timeseries", tags=_TAGS, summary="One metric per hour, day, week or month")
async def timeseries(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    metric: FromQuery[str] = "streams",
    granularity: FromQuery[str | None] = None,
    track_id: FromQuery[uuid.UUID | None] = None,
    range: _Range = None,
    from_: _From = None,
    to: _To = None,
    tz: _Tz = None,
    artist_id: _Artist = None,
) -> TimeseriesResponse:
    return await dashboard.timeseries_points(
        Scope.of(principal, artist_id),
        Query(range, from_, to, tz),
        metric=metric,
        granularity=granularity,
        track_id=track_id,
    )


@get("/api/dashboard/tracks", tags=_TAGS, summary="The overview metrics per track")
async def tracks(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    sort: FromQuery[str] = "streams",
    limit: FromQuery[int] = 50,
    range: _Range = None,
    from_: _From = None,
    to: _To = None,
    tz: _Tz = None,
    artist_id: _Artist = None,
) -> TracksResponse:
    return await dashboard.tracks(
        Scope.of(principal, artist_id), Query(range, from_, to, tz), sort=sort, limit=limit
    )


@get("/api/dashboard/breakdown", tags=_TAGS, summary="Streams and listeners by a dimension")
async def breakdown(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    dimension: FromQuery[str] = "country",
    range: _Range = None,
    from_: _From = None,
    to: _To = None,
    tz: _Tz = None,
    artist_id: _Artist = None,
) -> BreakdownResponse:
    return await dashboard.breakdown(
        Scope.of(principal, artist_id), Query(range, from_, to, tz), dimension=dimension
    )


@get("/api/dashboard/realtime", tags=_TAGS, summary="Streams per minute, last 30 minutes")
async def realtime(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    tz: _Tz = None,
    artist_id: _Artist = None,
) -> RealtimeResponse:
    return await dashboard.realtime(Scope.of(principal, artist_id), tz)


@get(
    "/api/dashboard/export.csv",
    tags=_TAGS,
    summary="The timeseries as CSV",
    media_type="text/csv",
)
async def export_csv(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    metric: FromQuery[str | None] = None,
    granularity: FromQuery[str | None] = None,
    track_id: FromQuery[uuid.UUID | None] = None,
    range: _Range = None,
    from_: _From = None,
    to: _To = None,
    tz: _Tz = None,
    artist_id: _Artist = None,
) -> Response[str]:
    text = await dashboard.export_csv(
        Scope.of(principal, artist_id),
        Query(range, from_, to, tz),
        metric=metric,
        granularity=granularity,
        track_id=track_id,
    )
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="lufy-timeseries.csv"'},
    )


ROUTES = [overview, timeseries, tracks, breakdown, realtime, export_csv]
