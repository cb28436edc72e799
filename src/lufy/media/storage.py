"""Blob storage: a port with three adapters (local filesystem, S3, in-memory fake).

Keys are `/`-separated relative paths (`uploads/{track_id}/source`, `hls/{track_id}/...`).
Every adapter refuses keys that could escape their namespace (`..`, absolute paths, empty
segments, control characters), so a key built from user input can never name another file.

Writes stream: `open_write` returns a writer that takes chunks and publishes the object only
when the writer is committed (a temp file renamed into place, or one S3 upload of a spooled
temp file), so a reader never sees half an object and a big file is never held in memory.

This module is the import path the rest of Lufy uses, and where the process's storage is
chosen from settings. The port lives in `storage_port`, the adapters in `storage_local`,
`storage_memory` and `storage_s3`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lufy.media.storage_local import LocalStorage
from lufy.media.storage_memory import MemoryStorage
from lufy.media.storage_port import (
    BlobInfo,
    BlobNotFoundError,
    BlobStorage,
    BlobWriter,
    InvalidKeyError,
    UploadTarget,
    check_key,
)
from lufy.media.storage_s3 import S3Storage

if TYPE_CHECKING:
    from lufy.settings import Settings

__all__ = [
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStorage",
    "BlobWriter",
    "InvalidKeyError",
    "LocalStorage",
    "MemoryStorage",
    "S3Storage",
    "UploadTarget",
    "check_key",
    "storage_from_settings",
]


def storage_from_settings(settings: Settings) -> BlobStorage:
    if settings.S3_BUCKET_NAME:
        return S3Storage(settings.S3_BUCKET_NAME, endpoint_url=settings.S3_ENDPOINT_URL)
    return LocalStorage(Path(settings.MEDIA_ROOT))
