"""Write `master-free.m3u8` for HLS packages transcoded before the free tier's master playlist
existed (a free-tier token is served it for `master.m3u8`, at both edges).

    python -m lufy.media.backfill

Idempotent: packages that have one are left alone; a package whose `master.m3u8` is missing
(unfinished, or being deleted) is skipped. Works on whatever storage the settings name (local
media root or S3).
"""

from __future__ import annotations

from lufy.media.edge import FREE_MASTER, MASTER
from lufy.media.storage import BlobStorage, storage_from_settings
from lufy.media.transcode import content_type_for, free_master
from lufy.settings import get_settings

__all__ = ["write_missing_free_masters"]


def write_missing_free_masters(storage: BlobStorage) -> list[str]:
    """Write the free master playlist of every package that lacks one; return their keys."""
    keys = storage.list("hls/")
    present = set(keys)
    written: list[str] = []
    for key in keys:
        if not key.endswith(f"/{MASTER}") or key.count("/") != 2:
            continue
        target = key.removesuffix(MASTER) + FREE_MASTER
        if target in present:
            continue
        text = storage.get_bytes(key).decode()
        storage.put_bytes(
            target, free_master(text).encode(), content_type=content_type_for(FREE_MASTER)
        )
        written.append(target)
    return written


if __name__ == "__main__":  # pragma: no cover - a one-off operator command
    done = write_missing_free_masters(storage_from_settings(get_settings()))
    print(f"wrote {len(done)} free master playlist(s)")
