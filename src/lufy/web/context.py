"""Per-request ids: `request_id` (ours) and `correlation_id` (the caller's, or ours).

Both are bound into structlog's context for every log line of the request, echoed in response
headers, and read by services to stamp event metadata (so jobs and their logs carry them too).
"""

from __future__ import annotations

import time

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from lufy.identity import (
    correlation_id,
    correlation_id_var,
    ids_for_headers,
    request_id,
    request_id_var,
)

__all__ = ["correlation_id", "request_context_middleware", "request_id"]

_request_id = request_id_var
_correlation_id = correlation_id_var


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        rid, cid = ids_for_headers(scope.get("headers", ()))
        rid_token = _request_id.set(rid)
        cid_token = _correlation_id.set(cid)
        structlog.contextvars.bind_contextvars(request_id=rid, correlation_id=cid)
        scope.setdefault("state", {})["started_at"] = time.perf_counter()
        extra = [(b"x-request-id", rid.encode()), (b"x-correlation-id", cid.encode())]

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await app(scope, receive, send_with_ids)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "correlation_id")
            _request_id.reset(rid_token)
            _correlation_id.reset(cid_token)

    return middleware
