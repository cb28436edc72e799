"""Jobs of the accounts context (run by `lufy worker`)."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from lufy.accounts.emails import deliver
from lufy.catalog.jobs import catalog_of
from lufy.catalog.service import CatalogService
from lufy.db import Database
from lufy.jobs import job
from lufy.jobs.broker import job_runtime
from lufy.jobs.loop import in_worker
from lufy.privacy.erasure import delete_tracks

__all__ = ["finish_erasure", "send_email"]


# Sending one message takes well under a second; a short limit also keeps the lease of a job
# whose worker was killed short (limit + 30 s) before the sweeper hands it to another worker.
@job(queue="email-send", max_retries=8, time_limit_ms=60_000)
def send_email(payload: dict[str, Any], *, job_key: str) -> None:
    """Render and send one account e-mail; the job key is the causing event's id, and the
    backends are idempotent on it (Resend's Idempotency-Key, the file backend's file name)."""
    deliver(payload, key=job_key, settings=job_runtime().settings)


@job(queue="media-processing", max_retries=8, time_limit_ms=600_000)
async def finish_erasure(payload: dict[str, Any], *, job_key: str) -> None:
    """Delete what is left of an erased person's tracks and media (payload: {user_id});
    idempotent, implied by each `accounts.user_erased`."""
    user_id = uuid.UUID(str(payload["user_id"]))
    await in_worker(lambda r: delete_tracks(_Tracks(r.db, catalog_of(r)), user_id))


class _Tracks(NamedTuple):
    """What `delete_tracks` uses of a container."""

    db: Database
    catalog: CatalogService
