"""The local filesystem adapter of the media storage port.

A write goes to a temp file next to its target, renamed into place on commit, so a reader never
sees half an object; the content type sits in a hidden sidecar file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lufy.media.storage_port import (
    CHUNK,
    BlobInfo,
    BlobNotFoundError,
    BlobWriter,
    InvalidKeyError,
    NoUploadTarget,
    SinkWriter,
    check_key,
    check_prefix,
)

__all__ = ["LocalStorage"]


class _LocalWriter(SinkWriter):
    def __init__(self, final: Path, content_type: str | None) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self._final = final
        self._content_type = content_type
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".part-", suffix=".tmp")
        self._tmp = Path(tmp)
        super().__init__(os.fdopen(fd, "wb"))

    def commit(self) -> None:
        self._sink.flush()
        os.fsync(self._sink.fileno())
        self._sink.close()
        os.replace(self._tmp, self._final)
        _write_type(self._final, self._content_type)

    def abort(self) -> None:
        self._sink.close()
        self._tmp.unlink(missing_ok=True)


def _type_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.type")


def _write_type(path: Path, content_type: str | None) -> None:
    marker = _type_file(path)
    if content_type:
        marker.write_text(content_type, encoding="utf-8")
    else:
        marker.unlink(missing_ok=True)


class LocalStorage(NoUploadTarget):
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
        folder = self._path(check_prefix(prefix)[:-1])
        count = len(self.list(prefix))
        if folder.is_dir():
            shutil.rmtree(folder)
        return count

    def list(self, prefix: str) -> list[str]:
        folder = self._path(check_prefix(prefix)[:-1])
        if not folder.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
