"""`/api/dashboard`: an artist's numbers (an admin's: everyone's, or one artist's)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Response, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
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


@dataclass(frozen=True)
class _Asked:
    """The five parameters every dashboard route but realtime takes."""

    query: Query
    artist_id: uuid.UUID | None

    def scope(self, principal: Principal) -> Scope:
        return Scope.of(principal, self.artist_id)


async def _asked(
    range: _Range = None,
    from_: _From = None,
    to: _To = None,
    tz: _Tz = None,
    artist_id: _Artist = None,
) -> _Asked:
    return _Asked(Query(range, from_, to, tz), artist_id)


def _route(path: str, summary: str, **options: Any) -> HTTPRouteHandler:
    """A dashboard GET route given its period and artist as `asked`."""
    return get(
        path, tags=_TAGS, summary=summary, dependencies={"asked": Provide(_asked)}, **options
    )


@_route("/api/dashboard/overview", "Totals of the period and the one before")
async def overview(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    asked: NamedDependency[_Asked],
) -> Overview:
    return await dashboard.overview(asked.scope(principal), asked.query)


@_route("/api/dashboard/timeseries", "One metric per hour, day, week or month")
async def timeseries(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    asked: NamedDependency[_Asked],
    metric: FromQuery[str] = "streams",
    granularity: FromQuery[str | None] = None,
    track_id: FromQuery[uuid.UUID | None] = None,
) -> TimeseriesResponse:
    return await dashboard.timeseries_points(
        asked.scope(principal),
        asked.query,
        metric=metric,
        granularity=granularity,
        track_id=track_id,
    )


@_route("/api/dashboard/tracks", "The overview metrics per track")
async def tracks(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    asked: NamedDependency[_Asked],
    sort: FromQuery[str] = "streams",
    limit: FromQuery[int] = 50,
) -> TracksResponse:
    return await dashboard.tracks(asked.scope(principal), asked.query, sort=sort, limit=limit)


@_route("/api/dashboard/breakdown", "Streams and listeners by a dimension")
async def breakdown(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    asked: NamedDependency[_Asked],
    dimension: FromQuery[str] = "country",
) -> BreakdownResponse:
    return await dashboard.breakdown(asked.scope(principal), asked.query, dimension=dimension)


@get(
    "/api/dashboard/realtime",
    tags=_TAGS,
    summary="Streams per minute, last 30 minutes",
)
async def realtime(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    tz: _Tz = None,
    artist_id: _Artist = None,
) -> RealtimeResponse:
    return await dashboard.realtime(Scope.of(principal, artist_id), tz)


@_route("/api/dashboard/export.csv", "The timeseries as CSV", media_type="text/csv")
async def export_csv(
    dashboard: NamedDependency[Dashboard],
    principal: NamedDependency[Principal],
    asked: NamedDependency[_Asked],
    metric: FromQuery[str | None] = None,
    granularity: FromQuery[str | None] = None,
    track_id: FromQuery[uuid.UUID | None] = None,
) -> Response[str]:
    text = await dashboard.export_csv(
        asked.scope(principal),
        asked.query,
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
