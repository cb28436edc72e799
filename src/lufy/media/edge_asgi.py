"""The local edge's lean path: `GET /media/hls/…` answered before the framework's stack.

A player fetches a master playlist, a variant playlist, a key and then a segment every few
seconds per listener: the edge is the hottest path of a streaming server, and none of the
application's stack applies to it. The token in the path is the only credential (no bearer
token, no session), rate limiting covers `/api/` only, no replica is read, and the decision is
the CloudFront Function's checks (`lufy.media.edge.Edge`: `authorize` verifying each token
once per process). So `wrap` puts this handler in front of the Litestar application
(`create_app`, outermost) and answers those requests itself with what the ordinary route
answered (`lufy.media.api.deliver`, which stays for every request not taken
here): the same status, body, content type and `Cache-Control`, RFC 9457 problems for
refusals, `X-Request-Id`/`X-Correlation-Id` and the request metrics under the route's template.

Not taken here, so the full stack answers them as before: any method but GET, and any request
carrying an `Origin` header (a cross-origin browser request gets the CORS middleware's
headers). Files of a local store are read on the event loop: an HLS package is made of small
files (a playlist, a 16-byte key, segments of a few seconds), and a thread hop per file costs
more than the read; any other store (S3) is read on a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from lufy.errors import (
    LufyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from lufy.identity import ids_for_headers
from lufy.logs import get_logger
from lufy.media import edge, uploads
from lufy.media.delivery import stream_keys
from lufy.media.storage import LocalStorage
from lufy.media.transcode import content_type_for
from lufy.observability import REQUEST_LATENCY, REQUESTS, REQUESTS_IN_FLIGHT

__all__ = ["PREFIX", "TEMPLATE", "InternalError", "problem", "wrap"]

PREFIX = "/media/hls/"
# The template the ordinary route is counted under, so both paths share one series.
TEMPLATE = "/media/hls/{path}"
_log = get_logger(__name__)
_PROBLEM = b"application/problem+json"
_CONTENT_TYPES = {
    ".m3u8": content_type_for("x.m3u8").encode(),
    ".ts": content_type_for("x.ts").encode(),
    ".bin": content_type_for("x.bin").encode(),
}
_OTHER_TYPE = content_type_for("x").encode()


def problem(error: LufyError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, body and headers of what `lufy.web.errors` answers for `error`, for handlers
    answered in front of the framework (this one, `lufy.catalog.api.lean_stream_route`)."""
    body = msgspec.json.encode(
        {
            "type": "about:blank",
            "status": error.status,
            "title": error.title,
            "detail": error.detail,
            **error.extra,
        }
    )
    headers = [(b"content-type", _PROBLEM)]
    if isinstance(error, RateLimitedError | ServiceUnavailableError):
        headers.append((b"retry-after", str(error.retry_after).encode()))
    return error.status, body, headers


class _Metrics:
    """The request counter and histogram children of the edge, one pair per status."""

    def __init__(self) -> None:
        self._children: dict[int, tuple[Any, Any]] = {}

    def observe(self, status: int, seconds: float) -> None:
        pair = self._children.get(status)
        if pair is None:
            labels = ("GET", TEMPLATE, str(status))
            pair = self._children[status] = (
                REQUESTS.labels(*labels),
                REQUEST_LATENCY.labels(*labels),
            )
        pair[0].inc()
        pair[1].observe(seconds)


def wrap(app: ASGIApp, container: Any, *, clock: Callable[[], float] = time.time) -> ASGIApp:
    """`app` with `GET /media/hls/…` (without `Origin`) answered by the lean edge."""
    # Settings, so the keys, are fixed for the life of the app: it remembers verified tokens.
    decider = edge.Edge(stream_keys(container.settings))
    metrics = _Metrics()
    answer = _answerer(container, decider, clock)

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope.get("method") != "GET"
            or not scope["path"].startswith(PREFIX)
            or any(name == b"origin" for name, _ in scope["headers"])
        ):
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        rid, cid = ids_for_headers(scope["headers"])
        REQUESTS_IN_FLIGHT.inc()
        status = 500
        try:
            try:
                status, body, headers = await answer(scope)
            except Exception:
                _log.exception(
                    "unhandled error", path=scope["path"], request_id=rid, correlation_id=cid
                )
                status, body, headers = problem(
                    InternalError("an unexpected error occurred; it has been logged")
                )
            headers += [
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode()),
                (b"x-correlation-id", cid.encode()),
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            REQUESTS_IN_FLIGHT.dec()
            metrics.observe(status, time.perf_counter() - started)

    return handler


_Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


def _answerer(
    container: Any, decider: edge.Edge, clock: Callable[[], float]
) -> Callable[[Scope], Awaitable[_Answer]]:
    """The edge's decision and read for one request (status, body, headers), made once per
    app: the handler calls it without allocating anything more per request."""

    async def read(key: str) -> bytes:
        storage = container.storage
        if isinstance(storage, LocalStorage):
            return _read_local(storage, key)  # on the loop: see the module's docstring
        return await asyncio.to_thread(uploads.read_media, storage, key)

    async def answer(scope: Scope) -> _Answer:
        # Decided on the raw path, as CloudFront sees it (no decoding, no normalising).
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        uri = raw.decode("latin-1").split("?", 1)[0].removeprefix("/media")
        decision = decider.authorize(uri, now=clock())
        if decision.origin_uri is None:
            return problem(PermissionDeniedError(decision.reason or "forbidden"))
        key = decision.origin_uri[1:]
        try:
            data = await read(key)
        except LufyError as exc:
            return problem(exc)
        suffix = key[key.rfind(".") :]
        return (
            200,
            data,
            [
                (b"content-type", _CONTENT_TYPES.get(suffix, _OTHER_TYPE)),
                (b"cache-control", b"private, no-store" if suffix == ".bin" else b"private"),
            ],
        )

    return answer


def _read_local(storage: LocalStorage, key: str) -> bytes:
    # `key` is `hls/{track id}/{name}[/{name}]`, every name checked by `authorize` (letters,
    # digits, `_`, `-` and inner dots: never `..`), so it stays under the store's root without
    # resolving the path on every request as `LocalStorage` does for arbitrary keys.
    # The file is read with bare system calls (open, fstat, read, close): no file object.
    try:
        fd = os.open(f"{storage.root}/{key}", os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError("no such media file") from None
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size)
        while len(data) < size:  # a short read (not seen with regular files): read the rest
            more = os.read(fd, size - len(data))
            if not more:
                break
            data += more
        return data
    except IsADirectoryError:
        raise NotFoundError("no such media file") from None
    finally:
        os.close(fd)


class InternalError(LufyError):
    status = 500
    title = "Internal server error"
