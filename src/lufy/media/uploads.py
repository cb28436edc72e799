"""Receiving a local upload: stream to storage, never holding the file in memory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec

from lufy.errors import LufyError, NotFoundError, PayloadTooLargeError, ValidationFailedError
from lufy.media.signing import UploadClaims
from lufy.media.storage import BlobNotFoundError, BlobStorage

__all__ = [
    "MAX_UPLOAD_BYTES",
    "Received",
    "UnsupportedMediaTypeError",
    "UploadGate",
    "read_media",
    "receive",
]

MAX_UPLOAD_BYTES = 200 * 1024 * 1024

# Raises unless the upload is still open for its bytes. The catalog owns uploads; the web app
# injects its check (`CatalogService.ensure_upload_open`) so that media needs no catalog import.
UploadGate = Callable[[uuid.UUID], Awaitable[None]]


class UnsupportedMediaTypeError(LufyError):
    status = 415
    title = "Unsupported media type"


class Received(msgspec.Struct, frozen=True, kw_only=True):
    upload_id: str
    size_bytes: int


def _normalize(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


async def receive(
    storage: BlobStorage,
    claims: UploadClaims,
    *,
    content_type: str | None,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
) -> Received:
    sent_type = _normalize(content_type)
    if sent_type != claims.content_type:
        raise UnsupportedMediaTypeError(
            f"Content-Type: this upload was declared as {claims.content_type!r} "
            f"but sent as {sent_type or 'nothing'!r}"
        )
    expected = claims.size_bytes
    if content_length is not None:
        try:
            announced = int(content_length)
        except ValueError:
            raise ValidationFailedError("Content-Length: not a number") from None
        if announced > expected:
            raise PayloadTooLargeError(
                f"the body has {announced} bytes but {expected} were declared for this upload"
            )
    writer = storage.open_write(claims.key, content_type=claims.content_type)
    try:
        async for chunk in chunks:
            if writer.bytes_written + len(chunk) > expected:
                raise PayloadTooLargeError(
                    f"the body is larger than the {expected} bytes declared for this upload"
                )
            writer.write(chunk)
        if writer.bytes_written != expected:
            raise ValidationFailedError(
                f"the upload is incomplete: received {writer.bytes_written} of "
                f"{expected} declared bytes"
            )
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    return Received(upload_id=str(claims.upload_id), size_bytes=writer.bytes_written)


def read_media(storage: BlobStorage, key: str) -> bytes:
    try:
        return storage.get_bytes(key)
    except BlobNotFoundError:
        raise NotFoundError("no such media file") from None
