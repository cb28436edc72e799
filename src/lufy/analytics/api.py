"""`POST /api/analytics/events`: batches of analytics events from players and web pages."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency

from lufy.analytics.ingest import IngestContext, Ingestor, IngestResult
from lufy.web.auth import Principal
from lufy.web.clientip import proxy_header
from lufy.web.context import correlation_id, request_id
from lufy.web.ratelimit import policies as limits
from lufy.web.ratelimit import rate_limited

__all__ = ["ROUTES", "ingest_events"]


@rate_limited(limits.INGEST)
@post(
    "/api/analytics/events",
    status_code=202,
    summary="Ingest a batch of analytics events",
    description="Body {events: [...]} of at most 500 events and 1 MiB, as application/json or "
    "text/plain (sendBeacon). Each bad event is listed in `rejected`; the rest are accepted.",
    tags=["analytics"],
)
async def ingest_events(
    request: Request[Any, Any, Any],
    ingestor: NamedDependency[Ingestor],
    maybe_principal: NamedDependency[Principal | None],
) -> IngestResult:
    context = IngestContext.from_headers(
        user_agent=request.headers.get("user-agent"),
        # Believed only from TRUSTED_PROXIES: any client can write this header.
        viewer_country=proxy_header(request.scope, "cloudfront-viewer-country"),
        user_id=maybe_principal.user_id if maybe_principal else None,
        correlation_id=correlation_id(),
        request_id=request_id(),
    )
    body = await request.body()
    return await ingestor.ingest_http(body, context, user_agent=request.headers.get("user-agent"))


ROUTES = [ingest_events]
