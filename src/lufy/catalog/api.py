"""/api/music (CONTRACT.md §3): thin handlers over CatalogService."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

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
from lufy.web.auth import Principal

__all__ = ["ROUTES"]

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
