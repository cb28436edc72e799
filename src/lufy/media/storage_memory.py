"""The in-memory fake of the media storage port (tests and benchmarks)."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from lufy.media.storage_port import (
    CHUNK,
    BlobInfo,
    BlobNotFoundError,
    BlobWriter,
    NoUploadTarget,
    SinkWriter,
    check_key,
    check_prefix,
)

__all__ = ["MemoryStorage"]


class _MemoryWriter(SinkWriter):
    def __init__(self, publish: Callable[[bytes], None]) -> None:
        self._publish = publish
        self._buffer = io.BytesIO()
        super().__init__(self._buffer)

    def commit(self) -> None:
        self._publish(self._buffer.getvalue())

    def abort(self) -> None:
        self._buffer = io.BytesIO()


class MemoryStorage(NoUploadTarget):
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
        key = check_key(key)
        return _MemoryWriter(lambda data: self.put_bytes(key, data, content_type=content_type))

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
        check_prefix(prefix)
        return sorted(k for k in list(self._objects) if k.startswith(prefix))
