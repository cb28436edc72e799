"""/media: the local upload target and HLS delivery (what S3 and CloudFront do in production).

- `PUT /media/uploads/{upload_id}?token=` streams the body to storage chunk by chunk, enforcing
  the size and content type bound into the upload token, as an S3 presigned PUT would.
- `GET /media/hls/{track_id}/{path}?token=` checks the stream token as the edge would (401
  missing/forged/expired, 403 another track) and rewrites playlists so every URI carries it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from litestar import Request, Response, Router, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK

from lufy.bootstrap import Container
from lufy.catalog.schemas import MAX_UPLOAD_BYTES
from lufy.catalog.service import catalog_service
from lufy.media import uploads
from lufy.media.delivery import media_key, rewrite_playlist
from lufy.media.signing import verify_stream_token, verify_upload_token
from lufy.media.storage import container_storage
from lufy.media.transcode import content_type_for

__all__ = ["ROUTES"]


@put(
    "/uploads/{upload_id:uuid}",
    status_code=HTTP_200_OK,
    summary="Local upload target (the API's stand-in for an S3 presigned PUT)",
    request_max_body_size=MAX_UPLOAD_BYTES,
)
async def receive_upload(
    upload_id: FromPath[uuid.UUID],
    request: Request[Any, Any, Any],
    container: NamedDependency[Container],
) -> uploads.Received:
    claims = verify_upload_token(
        container.settings.jwt_secret, request.query_params.get("token"), upload_id=upload_id
    )
    await catalog_service(container).ensure_upload_open(upload_id)
    return await uploads.receive(
        container_storage(container),
        claims,
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        chunks=request.stream(),
    )


@get("/hls/{track_id:uuid}/{path:path}", summary="HLS delivery with stream-token check")
async def deliver(
    track_id: FromPath[uuid.UUID],
    path: FromPath[str],
    request: Request[Any, Any, Any],
    container: NamedDependency[Container],
) -> Response[bytes]:
    token = request.query_params.get("token")
    verify_stream_token(container.settings.jwt_secret, token, track_id=track_id)
    assert token is not None
    key = media_key(track_id, path)
    data = await asyncio.to_thread(uploads.read_media, container_storage(container), key)
    if key.endswith(".m3u8"):
        data = rewrite_playlist(data.decode(), token).encode()
    return Response(
        data,
        media_type=content_type_for(key),
        headers={"Cache-Control": "private, no-store" if key.endswith(".bin") else "private"},
    )


ROUTES = [Router("/media", route_handlers=[receive_upload, deliver], tags=["media"])]
