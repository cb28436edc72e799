"""The S3 adapter of the media storage port (any S3-compatible endpoint).

A write spools to memory, then to a temp file past 8 MiB, and becomes one upload on commit:
a reader never sees half an object and a big file is never held in memory. Direct uploads are
presigned PUTs with the size and type bound into the signature.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lufy.errors import ServiceUnavailableError
from lufy.media.storage_port import (
    CHUNK,
    BlobInfo,
    BlobNotFoundError,
    BlobWriter,
    SinkWriter,
    UploadTarget,
    check_key,
    check_prefix,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Storage"]


class _S3Writer(SinkWriter):
    # Spooled: small objects stay in memory, big ones go to a temp file, never all in RAM.
    def __init__(self, owner: S3Storage, key: str, content_type: str | None) -> None:
        self._owner = owner
        self._key = key
        self._content_type = content_type
        self._spool = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # noqa: SIM115
        super().__init__(self._spool)

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
        full = self._full(check_prefix(prefix)[:-1]) + "/"
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
