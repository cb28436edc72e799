"""Catalog jobs on the `media-processing` queue: `process_upload`; `sweep_abandoned_uploads`
(scheduled hourly by the maintenance loop) and `delete_upload_source` (implied by each
`catalog.upload_abandoned`)."""

from __future__ import annotations

import uuid
from typing import Any

from lufy.catalog.processing import process_track
from lufy.catalog.service import CatalogService
from lufy.jobs import job
from lufy.jobs.broker import job_runtime
from lufy.jobs.loop import WorkerResources, in_worker
from lufy.logs import get_logger
from lufy.media.storage import storage_from_settings

__all__ = [
    "GAVE_UP",
    "catalog_of",
    "delete_upload_source",
    "give_up_on_upload",
    "process_upload",
    "sweep_abandoned_uploads",
]


_log = get_logger(__name__)

GAVE_UP = (
    "processing failed repeatedly and was given up; upload the file again "
    "(operators: `lufy jobs dead` shows the error)"
)


async def give_up_on_upload(payload: dict[str, Any], *, job_key: str, error: str) -> None:
    """`process_upload` is dead (retries spent): the track is failed, not left processing.

    The artist sees a reason they can act on; the error itself stays in the job ledger and the
    logs. The event id is the job's own failure id, so this never adds a second failure.
    """
    track_id = uuid.UUID(payload["track_id"])
    await in_worker(lambda r: catalog_of(r).fail_transcoding(track_id, job_key, GAVE_UP))


def catalog_of(resources: WorkerResources) -> CatalogService:
    """The catalog service over the worker's resources (no I/O: a few attributes)."""
    return CatalogService(
        db=resources.db,
        store=resources.store,
        storage=resources.storage,
        settings=resources.settings,
    )


# Transcoding a 30-minute file takes a while on a small machine; a kill mid-run is retried.
@job(
    queue="media-processing",
    max_retries=5,
    min_backoff_ms=5_000,
    time_limit_ms=1_800_000,
    on_dead=give_up_on_upload,
)
async def process_upload(payload: dict[str, Any], *, job_key: str) -> None:
    """Validate and transcode one uploaded track (payload: {track_id})."""
    track_id = uuid.UUID(payload["track_id"])
    await in_worker(lambda r: process_track(catalog_of(r), track_id, job_key))


@job(queue="media-processing", max_retries=3, time_limit_ms=600_000)
async def sweep_abandoned_uploads(payload: dict[str, Any], *, job_key: str) -> None:
    """Abandon the uploads never completed within 24 h (payload: {scheduled_at})."""
    count = await in_worker(lambda r: catalog_of(r).abandon_stale_uploads(job_key=job_key))
    if count:
        _log.info("abandoned uploads never completed", count=count)


@job(queue="media-processing", max_retries=8)
def delete_upload_source(payload: dict[str, Any], *, job_key: str) -> None:
    """Delete the source of an abandoned upload (payload: {track_id, storage_key})."""
    storage_from_settings(job_runtime().settings).delete(str(payload["storage_key"]))
