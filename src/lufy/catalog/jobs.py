"""Catalog jobs on the `media-processing` queue: `process_upload`; `sweep_abandoned_uploads`
(scheduled hourly by the maintenance loop) and `delete_upload_source` (implied by each
`catalog.upload_abandoned`)."""

from __future__ import annotations

import uuid
from typing import Any

from lufy.bootstrap import bootstrap
from lufy.catalog.processing import process_track
from lufy.jobs import job
from lufy.logs import get_logger

__all__ = [
    "GAVE_UP",
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
    from lufy.jobs.broker import current

    container = bootstrap(current().settings, pool_size=2)
    await container.start()
    try:
        await container.catalog.fail_transcoding(uuid.UUID(payload["track_id"]), job_key, GAVE_UP)
    finally:
        await container.stop()


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
    from lufy.jobs.broker import current

    # The worker's settings (those it was configured with), not a fresh read of the env.
    container = bootstrap(current().settings, pool_size=2)
    await container.start()
    try:
        await process_track(container.catalog, uuid.UUID(payload["track_id"]), job_key)
    finally:
        await container.stop()


@job(queue="media-processing", max_retries=3, time_limit_ms=600_000)
async def sweep_abandoned_uploads(payload: dict[str, Any], *, job_key: str) -> None:
    """Abandon the uploads never completed within 24 h (payload: {scheduled_at})."""
    from lufy.jobs.broker import current

    container = bootstrap(current().settings, pool_size=2)
    await container.start()
    try:
        count = await container.catalog.abandon_stale_uploads(job_key=job_key)
        if count:
            _log.info("abandoned uploads never completed", count=count)
    finally:
        await container.stop()


@job(queue="media-processing", max_retries=8)
def delete_upload_source(payload: dict[str, Any], *, job_key: str) -> None:
    """Delete the source of an abandoned upload (payload: {track_id, storage_key})."""
    from lufy.jobs.broker import current
    from lufy.media.storage import storage_from_settings

    storage_from_settings(current().settings).delete(str(payload["storage_key"]))
