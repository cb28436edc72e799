"""Blob storage: a port with three adapters (local filesystem, S3, in-memory fake).

Keys are `/`-separated relative paths (`uploads/{track_id}/source`, `hls/{track_id}/...`).
Every adapter refuses keys that could escape their namespace (`..`, absolute paths, empty
segments, control characters), so a key built from user input can never name another file.

Writes stream: `open_write` returns a writer that takes chunks and publishes the object only
when the writer is committed (a temp file renamed into place, or one S3 upload of a spooled
temp file), so a reader never sees half an object and a big file is never held in memory.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

from lufy.errors import ServiceUnavailableError, ValidationFailedError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

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


def _check_prefix(prefix: str) -> str:
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


# --- local filesystem -------------------------------------------------------------------------


class _LocalWriter:
    def __init__(self, final: Path, content_type: str | None) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self._final = final
        self._content_type = content_type
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".part-", suffix=".tmp")
        self._tmp = Path(tmp)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self.bytes_written = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self.bytes_written += len(chunk)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self._final)
        _write_type(self._final, self._content_type)

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


def _type_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.type")


def _write_type(path: Path, content_type: str | None) -> None:
    marker = _type_file(path)
    if content_type:
        marker.write_text(content_type, encoding="utf-8")
    else:
        marker.unlink(missing_ok=True)


class LocalStorage:
    """Objects are files under `root`; the content type sits in a hidden sidecar file."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidKeyError(f"invalid media path {key[:80]!r}")
        return path

    def open_write(self, key: str, *, content_type: str | None = None) -> BlobWriter:
        return _LocalWriter(self._path(key), content_type)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        writer = self.open_write(key, content_type=content_type)
        try:
            with path.open("rb") as source:
                while chunk := source.read(CHUNK):
                    writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        writer = self.open_write(key, content_type=content_type)
        writer.write(data)
        writer.commit()

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise BlobNotFoundError(key) from None

    def iter_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFoundError(key)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as source:
                while chunk := source.read(chunk_size):
                    yield chunk

        return chunks()

    def download_to(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise BlobNotFoundError(key)
        shutil.copyfile(source, path)

    def stat(self, key: str) -> BlobInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        marker = _type_file(path)
        content_type = marker.read_text(encoding="utf-8") if marker.exists() else None
        return BlobInfo(key=key, size=path.stat().st_size, content_type=content_type)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        _type_file(path).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        folder = self._path(_check_prefix(prefix)[:-1])
        count = len(self.list(prefix))
        if folder.is_dir():
            shutil.rmtree(folder)
        return count

    def list(self, prefix: str) -> list[str]:
        folder = self._path(_check_prefix(prefix)[:-1])
        if not folder.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def upload_target(
        self, key: str, *, content_type: str, size_bytes: int, expires_in: int
    ) -> UploadTarget | None:
        return None


# --- in-memory fake ----------------------------------------------------------------------------


class _MemoryWriter:
    def __init__(self, owner: MemoryStorage, key: str, content_type: str | None) -> None:
        self._owner = owner
        self._key = key
        self._content_type = content_type
        self._buffer = io.BytesIO()
        self.bytes_written = 0

    def write(self, chunk: bytes) -> None:
        self._buffer.write(chunk)
        self.bytes_written += len(chunk)

    def commit(self) -> None:
        with self._owner._lock:
            self._owner._objects[self._key] = (self._buffer.getvalue(), self._content_type)

    def abort(self) -> None:
        self._buffer = io.BytesIO()


class MemoryStorage:
    """The test fake: same contract, objects in a dict."""

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, str | None]] = {}
        self._lock = threading.Lock()

    def _get(self, key: str) -> tuple[bytes, str | None]:
        try:
            return self._objects[check_key(key)]
        except KeyError:
            raise BlobNotFoundError(key) from None

    def open_write(self, key: str, *, content_type: str | None = None) -> BlobWriter:
        return _MemoryWriter(self, check_key(key), content_type)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        self.put_bytes(key, path.read_bytes(), content_type=content_type)

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        with self._lock:
            self._objects[check_key(key)] = (bytes(data), content_type)

    def get_bytes(self, key: str) -> bytes:
        return self._get(key)[0]

    def iter_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        data = self._get(key)[0]
        return (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))

    def download_to(self, key: str, path: Path) -> None:
        path.write_bytes(self._get(key)[0])

    def stat(self, key: str) -> BlobInfo | None:
        item = self._objects.get(check_key(key))
        if item is None:
            return None
        return BlobInfo(key=key, size=len(item[0]), content_type=item[1])

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(check_key(key), None)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        with self._lock:
            for key in keys:
                self._objects.pop(key, None)
        return len(keys)

    def list(self, prefix: str) -> list[str]:
        _check_prefix(prefix)
        return sorted(k for k in list(self._objects) if k.startswith(prefix))

    def upload_target(
        self, key: str, *, content_type: str, size_bytes: int, expires_in: int
    ) -> UploadTarget | None:
        return None


# --- S3 ----------------------------------------------------------------------------------------


class _S3Writer:
    # Spooled: small objects stay in memory, big ones go to a temp file, never all in RAM.
    def __init__(self, owner: S3Storage, key: str, content_type: str | None) -> None:
        self._owner = owner
        self._key = key
        self._content_type = content_type
        self._spool = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # noqa: SIM115
        self.bytes_written = 0

    def write(self, chunk: bytes) -> None:
        self._spool.write(chunk)
        self.bytes_written += len(chunk)

    def commit(self) -> None:
        self._spool.seek(0)
        extra: dict[str, Any] = {}
        if self._content_type:
            extra["ContentType"] = self._content_type
        self._owner.client.upload_fileobj(
            self._spool, self._owner.bucket, self._owner._full(self._key), ExtraArgs=extra
        )
        self._spool.close()

    def abort(self) -> None:
        self._spool.close()


@contextmanager
def _reachable() -> Iterator[None]:
    """An unreachable S3 endpoint is a 503 for the API (and a retry for a job), not a 500."""
    from botocore.exceptions import ConnectionError as BotoConnectionError

    try:
        yield
    except BotoConnectionError as exc:
        raise ServiceUnavailableError(f"media storage unavailable: {exc}") from None


class S3Storage:
    """Objects in one S3 bucket (any S3-compatible endpoint), under an optional key prefix."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        client: S3Client | None = None,
        prefix: str = "",
        region_name: str | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.client: S3Client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region_name or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def _full(self, key: str) -> str:
        return f"{self.prefix}{check_key(key)}"

    def open_write(self, key: str, *, content_type: str | None = None) -> BlobWriter:
        check_key(key)
        return _S3Writer(self, key, content_type)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        self.client.upload_file(str(path), self.bucket, self._full(key), ExtraArgs=extra)

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data, **extra)

    def _get_object(self, key: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            with _reachable():
                return self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobNotFoundError(key) from None
            raise

    def get_bytes(self, key: str) -> bytes:
        body = self._get_object(key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def iter_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        body = self._get_object(key)["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

        return chunks()

    def download_to(self, key: str, path: Path) -> None:
        if self.stat(key) is None:
            raise BlobNotFoundError(key)
        self.client.download_file(self.bucket, self._full(key), str(path))

    def stat(self, key: str) -> BlobInfo | None:
        from botocore.exceptions import ClientError

        try:
            with _reachable():
                head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return BlobInfo(
            key=key, size=int(head["ContentLength"]), content_type=head.get("ContentType")
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._full(k)} for k in batch], "Quiet": True},
            )
        return len(keys)

    def list(self, prefix: str) -> list[str]:
        full = self._full(_check_prefix(prefix)[:-1]) + "/"
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", []))
        return sorted(keys)

    def upload_target(
        self, key: str, *, content_type: str, size_bytes: int, expires_in: int
    ) -> UploadTarget | None:
        # Content-Type and Content-Length are signed headers of the presigned PUT: S3 refuses
        # a request whose body differs in type or size from what the API accepted.
        url = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._full(key),
                "ContentType": content_type,
                "ContentLength": size_bytes,
            },
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return UploadTarget(
            method="PUT",
            url=url,
            headers={"Content-Type": content_type, "Content-Length": str(size_bytes)},
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        )

    def create_bucket(self) -> None:
        """For tests and local S3-compatible servers."""
        self.client.create_bucket(Bucket=self.bucket)


def storage_from_settings(settings: Settings) -> BlobStorage:
    if settings.S3_BUCKET_NAME:
        return S3Storage(settings.S3_BUCKET_NAME, endpoint_url=settings.S3_ENDPOINT_URL)
    return LocalStorage(Path(settings.MEDIA_ROOT))
