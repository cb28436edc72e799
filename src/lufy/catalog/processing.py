"""Processing an upload: validate, transcode to HLS, store, record the outcome.

Idempotent on the job key and safe to kill at any point:
- the outcome events have ids derived from the job key, so a rerun appends nothing new;
- a track that is already ready, failed or deleted is left alone;
- the package is built in a private temp directory, and storage under `hls/{track_id}/` is
  cleared and rewritten deterministically (segments first, the master playlist last) before the
  `catalog.track_transcoded` event makes it visible. A worker killed midway leaves at most an
  unreferenced partial package, which the retry overwrites.
A file that is not usable audio ends in `failed` with a reason; the job itself succeeds, so a
bad upload never becomes a crash loop.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from pathlib import Path, PurePosixPath

from lufy.catalog.commands import FinishTranscoding
from lufy.catalog.model import PROCESSING
from lufy.catalog.service import CatalogService
from lufy.logs import get_logger
from lufy.media import transcode
from lufy.media.storage import BlobNotFoundError

__all__ = ["hls_prefix", "process_track", "sweep_stale_workdirs"]

_log = get_logger(__name__)
_WORKDIR_PREFIX = "lufy-transcode-"
# Longer than the job's time limit: a directory this old belongs to a killed worker.
_STALE_AFTER_S = 2 * 3600


def sweep_stale_workdirs(now: float | None = None) -> int:
    """Remove work directories that killed workers left in the temp dir; returns how many."""
    root = Path(tempfile.gettempdir())
    limit = (now or time.time()) - _STALE_AFTER_S
    removed = 0
    for path in root.glob(f"{_WORKDIR_PREFIX}*"):
        try:
            if path.is_dir() and path.stat().st_mtime < limit:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def hls_prefix(track_id: uuid.UUID) -> str:
    return f"hls/{track_id}/"


def _transcode(
    service: CatalogService,
    track_id: uuid.UUID,
    source_key: str,
    workdir: Path,
    content_type: str | None = None,
) -> FinishTranscoding:
    """The blocking part, run in a thread: download, probe, package, upload."""
    source = workdir / f"source{PurePosixPath(source_key).suffix}"
    try:
        service.storage.download_to(source_key, source)
    except BlobNotFoundError:
        raise transcode.MediaRejected(
            "the uploaded file is no longer in storage; upload it again"
        ) from None
    # Read as the declared type, never as what the file's content claims to be.
    probed = transcode.probe(source, content_type=content_type)
    out = workdir / "hls"
    package = transcode.package_hls(source, out, probed=probed, encrypt=service.encrypt_hls)
    prefix = hls_prefix(track_id)
    service.storage.delete_prefix(prefix)
    for name in transcode.publish_order(package.files):
        service.storage.put_file(
            prefix + name, out / name, content_type=transcode.content_type_for(name)
        )
    return FinishTranscoding(
        duration_ms=package.duration_ms,
        loudness_lufs=package.loudness_lufs,
        hls_prefix=prefix,
        renditions_kbps=list(transcode.RENDITIONS),
        encrypted=package.encrypted,
    )


async def process_track(service: CatalogService, track_id: uuid.UUID, job_key: str) -> str:
    """Process one uploaded track; returns the track's resulting status."""
    state = await service.processing_state(track_id)
    if not state.exists or state.deleted or state.status != PROCESSING:
        _log.info("nothing to process", track_id=str(track_id), status=state.status)
        return "deleted" if state.deleted else state.status
    await service.start_transcoding(track_id, job_key)
    await asyncio.to_thread(sweep_stale_workdirs)
    with tempfile.TemporaryDirectory(prefix=_WORKDIR_PREFIX) as tmp:
        try:
            result = await asyncio.to_thread(
                _transcode,
                service,
                track_id,
                state.storage_key,
                Path(tmp),
                state.content_type or None,
            )
        except transcode.MediaRejected as exc:
            _log.info("upload rejected", track_id=str(track_id), reason=exc.reason)
            final = await service.fail_transcoding(track_id, job_key, exc.reason)
            return final.status
    final = await service.finish_transcoding(track_id, job_key, result)
    if final.deleted:
        # Deleted while we transcoded: take back what we wrote.
        await asyncio.to_thread(service.remove_media, track_id, None)
        return "deleted"
    return final.status
