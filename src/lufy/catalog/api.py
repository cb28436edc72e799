"""/api/music (CONTRACT.md §3): thin handlers over CatalogService."""

from __future__ import annotations

import functools
import re
import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from lufy.catalog.schemas import (
    StreamGrant,
    Track,
    TrackList,
    TrackUpdate,
    UploadAccepted,
    UploadCreate,
    UploadTicket,
)
from lufy.catalog.service import CatalogService
from lufy.errors import LufyError
from lufy.logs import get_logger
from lufy.media.edge_asgi import InternalError, problem
from lufy.web.auth import Principal

__all__ = ["ROUTES", "STREAM_TEMPLATE", "lean_stream_route"]

_log = get_logger(__name__)

_BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]


@post("/uploads", status_code=HTTP_201_CREATED, summary="Start an upload", security=_BEARER)
async def create_upload(
    data: JSONBody[UploadCreate],
    principal: NamedDependency[Principal],
    catalog: NamedDependency[CatalogService],
) -> UploadTicket:
    return await catalog.request_upload(principal, data)


@post(
    "/uploads/{upload_id:uuid}/complete",
    status_code=HTTP_202_ACCEPTED,
    summary="Finish an upload and start processing",
    security=_BEARER,
)
async def complete_upload(
    upload_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    catalog: NamedDependency[CatalogService],
) -> UploadAccepted:
    return await catalog.complete_upload(principal, upload_id)


@get("/tracks", summary="Tracks the caller may see (own in every state, others published)")
async def list_tracks(
    catalog: NamedDependency[CatalogService],
    maybe_principal: NamedDependency[Principal | None],
    artist_id: FromQuery[uuid.UUID | None] = None,
    status: FromQuery[Literal["uploading", "processing", "ready", "failed"] | None] = None,
    published: FromQuery[bool] = False,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
) -> TrackList:
    tracks = await catalog.list_tracks(
        maybe_principal,
        artist_id=artist_id,
        status=status,
        published_only=published,
        limit=limit,
        offset=offset,
    )
    return TrackList(tracks=tracks)


@get("/tracks/{track_id:uuid}", summary="One track")
async def get_track(
    track_id: FromPath[uuid.UUID],
    catalog: NamedDependency[CatalogService],
    maybe_principal: NamedDependency[Principal | None],
) -> Track:
    return await catalog.get_track(maybe_principal, track_id)


@patch("/tracks/{track_id:uuid}", summary="Update a track's metadata", security=_BEARER)
async def update_track(
    track_id: FromPath[uuid.UUID],
    data: JSONBody[TrackUpdate],
    principal: NamedDependency[Principal],
    catalog: NamedDependency[CatalogService],
) -> Track:
    return await catalog.update_track(principal, track_id, data)


@post(
    "/tracks/{track_id:uuid}/publish",
    status_code=HTTP_200_OK,
    summary="Publish a ready track",
    security=_BEARER,
)
async def publish_track(
    track_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    catalog: NamedDependency[CatalogService],
) -> Track:
    return await catalog.publish(principal, track_id)


@post(
    "/tracks/{track_id:uuid}/unpublish",
    status_code=HTTP_200_OK,
    summary="Unpublish a track",
    security=_BEARER,
)
async def unpublish_track(
    track_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    catalog: NamedDependency[CatalogService],
) -> Track:
    return await catalog.unpublish(principal, track_id)


@delete(
    "/tracks/{track_id:uuid}",
    summary="Delete a track, its media, and every way to stream it",
    security=_BEARER,
)
async def delete_track(
    track_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    catalog: NamedDependency[CatalogService],
) -> None:
    await catalog.delete(principal, track_id)


@get("/tracks/{track_id:uuid}/stream", summary="A stream token and URL for a track")
async def stream_track(
    track_id: FromPath[uuid.UUID],
    catalog: NamedDependency[CatalogService],
    maybe_principal: NamedDependency[Principal | None],
) -> StreamGrant:
    return await catalog.authorize_stream(maybe_principal, track_id)


ROUTES = [
    Router(
        "/api/music",
        route_handlers=[
            create_upload,
            complete_upload,
            list_tracks,
            get_track,
            update_track,
            publish_track,
            unpublish_track,
            delete_track,
            stream_track,
        ],
        tags=["music"],
        request_max_body_size=64 * 1024,
    )
]


# --- the lean path of the stream authorisation --------------------------------------------------

# The template the route is counted under (Litestar's path format of `stream_track`).
STREAM_TEMPLATE = "/api/music/tracks/{track_id}/stream"
_STREAM_PATH = re.compile(
    r"/api/music/tracks/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/stream"
)
_JSON = b"application/json"


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def lean_stream_route(app: ASGIApp, container: Any) -> ASGIApp:
    """`app` with `GET /api/music/tracks/{id}/stream` answered without Litestar's routing,
    dependency injection and response machinery, through the application's own middleware
    (request ids, metrics, authentication, rate limiting, in the order `create_app` gives
    them): the first request of every play, so part of the time to first segment.

    It answers what `stream_track` answers (the grant, or the same problem+json for a refusal).
    Not taken here: any other method, a track id Litestar would parse but that is not a
    lower-case canonical UUID, and any request with an `Origin` header (the CORS middleware
    answers those), which the full stack answers as before.
    """

    async def grant(scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope["state"].get("principal")
        track_id = uuid.UUID(scope["path"][18:54])  # checked by _STREAM_PATH
        try:
            result = await container.catalog.authorize_stream(
                principal if isinstance(principal, Principal) else None, track_id
            )
        except LufyError as exc:
            await _answer(send, *problem(exc))
            return
        await _answer(send, 200, msgspec.json.encode(result), [(b"content-type", _JSON)])

    @functools.cache
    def chain(middleware: tuple[Any, ...]) -> ASGIApp:
        handler: ASGIApp = grant
        for factory in reversed(middleware):
            handler = factory(app=handler)  # as Litestar builds a route's stack
        return handler

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope.get("method") != "GET"
            or _STREAM_PATH.fullmatch(scope["path"]) is None
            or any(name == b"origin" for name, _ in scope["headers"])
        ):
            await app(scope, receive, send)
            return
        scope["path_template"] = STREAM_TEMPLATE
        scope["path_params"] = {}
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await chain(tuple(scope["app"].middleware))(scope, receive, watch)
        except Exception:
            # What Litestar's exception middleware does for an error of the middleware.
            _log.exception("unhandled error", path=scope["path"])
            if not started:
                error = InternalError("an unexpected error occurred; it has been logged")
                await _answer(send, *problem(error))

    return handler
