"""Background jobs: dramatiq on Redis for side effects, tracked in PostgreSQL until done.

    from lufy.jobs import job, JobSpec

    @job(queue="email-send")
    def send_email(payload: dict, *, job_key: str) -> None: ...

`@job` declares a dramatiq actor with its options; the ledger is a dramatiq middleware
(`lufy.jobs.ledger_middleware`). Jobs are started from the log by reactors
(`lufy.projections.reactors.Reactor`), never by a request handler. See docs/operations.md for
the worker, the sweeper, dead jobs and retries.
"""

from __future__ import annotations

from lufy.jobs.registry import QUEUES, job
from lufy.jobs.spec import JobSpec

__all__ = ["QUEUES", "JobSpec", "job"]
