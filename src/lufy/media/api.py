"""/media: the local upload target and HLS delivery (what S3 and CloudFront do in production).

- `PUT /media/uploads/{upload_id}?token=` streams the body to storage chunk by chunk, enforcing
  the size and content type bound into the upload token, as an S3 presigned PUT would.
- `GET /media/hls/{token}/{track_id}/{file}` is the local edge: it makes exactly the checks of
  the CloudFront Function (`lufy.media.edge`, 403 on any failure) and serves the static object
  from the storage port; playlists are served as the transcoder wrote them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from litestar import Request, Response, Router, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK

from lufy.errors import PermissionDeniedError
from lufy.media import edge, uploads
from lufy.media.delivery import stream_keys
from lufy.media.signing import verify_upload_token
from lufy.media.storage import BlobStorage
from lufy.media.transcode import content_type_for
from lufy.media.uploads import MAX_UPLOAD_BYTES
from lufy.settings import Settings

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
    settings: NamedDependency[Settings],
    storage: NamedDependency[BlobStorage],
    upload_gate: NamedDependency[uploads.UploadGate],
) -> uploads.Received:
    claims = verify_upload_token(
        settings.jwt_secret, request.query_params.get("token"), upload_id=upload_id
    )
    await upload_gate(upload_id)
    return await uploads.receive(
        storage,
        claims,
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        chunks=request.stream(),
    )


@get(
    "/hls/{path:path}",
    summary="HLS delivery: the local edge (the stream token is in the path)",
    include_in_schema=True,
)
async def deliver(
    path: FromPath[str],
    request: Request[Any, Any, Any],
    settings: NamedDependency[Settings],
    storage: NamedDependency[BlobStorage],
) -> Response[bytes]:
    del path  # decided on the raw path, as CloudFront sees it (no decoding, no normalising)
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    uri = raw.decode("latin-1").split("?", 1)[0].removeprefix("/media")
    decision = edge.authorize(uri, stream_keys(settings), now=time.time())
    if decision.origin_uri is None:
        raise PermissionDeniedError(decision.reason or "forbidden")
    key = decision.origin_uri.removeprefix("/")
    data = await asyncio.to_thread(uploads.read_media, storage, key)
    return Response(
        data,
        media_type=content_type_for(key),
        headers={"Cache-Control": "private, no-store" if key.endswith(".bin") else "private"},
    )


ROUTES = [Router("/media", route_handlers=[receive_upload, deliver], tags=["media"])]
