"""Jobs of the accounts context (run by `lufy worker`)."""

from __future__ import annotations

from typing import Any

from lufy.accounts.emails import deliver
from lufy.jobs import job

__all__ = ["finish_erasure", "send_email"]


# Sending one message takes well under a second; a short limit also keeps the lease of a job
# whose worker was killed short (limit + 30 s) before the sweeper hands it to another worker.
@job(queue="email-send", max_retries=8, time_limit_ms=60_000)
def send_email(payload: dict[str, Any], *, job_key: str) -> None:
    """Render and send one account e-mail; the job key is the causing event's id, and the
    backends are idempotent on it (Resend's Idempotency-Key, the file backend's file name)."""
    from lufy.jobs.broker import current

    deliver(payload, key=job_key, settings=current().settings)


@job(queue="media-processing", max_retries=8, time_limit_ms=600_000)
async def finish_erasure(payload: dict[str, Any], *, job_key: str) -> None:
    """Delete what is left of an erased person's tracks and media (payload: {user_id});
    idempotent, implied by each `accounts.user_erased`."""
    import uuid

    from lufy.bootstrap import bootstrap
    from lufy.jobs.broker import current
    from lufy.privacy.erasure import delete_tracks

    container = bootstrap(current().settings, pool_size=2)
    await container.start()
    try:
        await delete_tracks(container, uuid.UUID(str(payload["user_id"])))
    finally:
        await container.stop()
