"""The media storage port: keys, the BlobStorage protocol and the types it speaks.

Keys are `/`-separated relative paths (`uploads/{track_id}/source`, `hls/{track_id}/...`).
Every adapter refuses keys that could escape their namespace (`..`, absolute paths, empty
segments, control characters) through `check_key`, so a key built from user input can never
name another file. The adapters: `storage_local`, `storage_memory`, `storage_s3`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from lufy.errors import ValidationFailedError

__all__ = [
    "CHUNK",
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStorage",
    "BlobWriter",
    "InvalidKeyError",
    "NoUploadTarget",
    "SinkWriter",
    "UploadTarget",
    "check_key",
    "check_prefix",
]

CHUNK = 1024 * 1024
# Used with fullmatch: `$` also matches before a trailing newline.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class InvalidKeyError(ValidationFailedError):
    """A storage key that could escape its namespace."""

    status = 400
    title = "Invalid media path"


def check_key(key: str) -> str:
    """Return `key` if every segment is a plain name; raise InvalidKeyError otherwise."""
    parts = key.split("/")
    if not key or len(key) > 1024 or any(not _SEGMENT.fullmatch(p) or ".." in p for p in parts):
        raise InvalidKeyError(f"invalid media path {key[:80]!r}")
    return key


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it ends with `/` and names a valid key; raise InvalidKeyError."""
    if not prefix.endswith("/"):
        raise InvalidKeyError("a prefix must end with '/'")
    check_key(prefix[:-1])
    return prefix


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    content_type: str | None


@dataclass(frozen=True)
class UploadTarget:
    """Where a client sends a file directly (an S3 presigned request)."""

    method: str
    url: str
    headers: dict[str, str]
    expires_at: datetime


class BlobWriter(Protocol):
    """Receives an object's bytes in chunks; nothing is visible until `commit()`."""

    bytes_written: int

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


@runtime_checkable
class BlobStorage(Protocol):
    """The media storage port."""

    def open_write(self, key: str, *, content_type: str | None = None) -> BlobWriter: ...

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None: ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def iter_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]: ...

    def download_to(self, key: str, path: Path) -> None: ...

    def stat(self, key: str) -> BlobInfo | None: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def list(self, prefix: str) -> list[str]: ...

    def upload_target(
        self, key: str, *, content_type: str, size_bytes: int, expires_in: int
    ) -> UploadTarget | None:
        """A direct-upload target with size and type bound into its signature, or None when
        the client must upload through the API (local and in-memory storage)."""
        ...


class BlobNotFoundError(FileNotFoundError):
    pass


class NoUploadTarget:
    """For adapters without direct uploads: clients upload through the API."""

    def upload_target(
        self, key: str, *, content_type: str, size_bytes: int, expires_in: int
    ) -> UploadTarget | None:
        return None


class SinkWriter:
    """What the adapters' writers share: chunks go to `_sink`, counted in `bytes_written`.

    Subclasses publish the sink's bytes in `commit()` and drop them in `abort()`."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self.bytes_written = 0

    def write(self, chunk: bytes) -> None:
        self._sink.write(chunk)
        self.bytes_written += len(chunk)
