"""The async side of the job ledger: record jobs in a transaction, enqueue after commit, sweep.

Recording happens in the caller's transaction (a reactor's checkpoint transaction, the
scheduler's); enqueueing happens after commit, so Redis never holds a job PostgreSQL does not.
The sweeper closes the other gap: a recorded job whose message is not in Redis (lost with a
restarted Redis, or never sent because the process died right after commit) is sent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from lufy.jobs.broker import JobRuntime, QueuedJob
from lufy.jobs.spec import JobSpec
from lufy.logs import get_logger
from lufy.sqlfiles import load_queries

__all__ = ["enqueue", "list_jobs", "record", "revive_dead", "sweep"]

_Q = load_queries("lufy.jobs")
_log = get_logger(__name__)


async def record(
    conn: AsyncConnection[Any], spec: JobSpec, *, source: str | None = None
) -> QueuedJob | None:
    """Record one job in `conn`'s transaction; None when (actor, key) is already known."""
    cur = await conn.execute(
        _Q.record_one_job,
        {
            "actor": spec.actor,
            "job_key": spec.key,
            "queue": spec.queue,
            "payload": Jsonb(spec.payload),
            "source": source,
            "correlation_id": spec.correlation_id,
            "causation_id": spec.causation_id,
        },
    )
    row = await cur.fetchone()
    return QueuedJob.from_row(row) if row else None


async def enqueue(runtime: JobRuntime, jobs: Sequence[QueuedJob]) -> int:
    """Send committed jobs to Redis; failures are left to the sweeper. Returns how many went."""
    if not jobs:
        return 0

    def send() -> int:
        sent = 0
        for job in jobs:
            try:
                runtime.enqueue(job)
                sent += 1
            except Exception as exc:  # Redis down: the job is safe in PostgreSQL
                _log.warning(
                    "enqueue failed; the sweeper will retry",
                    job=job.actor,
                    job_key=job.job_key,
                    error=str(exc).strip(),
                )
                break
        return sent

    return await asyncio.to_thread(send)


async def sweep(
    conn: AsyncConnection[Any], runtime: JobRuntime, *, grace_seconds: float = 30.0
) -> int:
    """Re-enqueue unfinished jobs whose message Redis no longer holds. Returns how many."""
    cur = await conn.execute(_Q.stale_jobs, {"grace_seconds": grace_seconds, "limit": 1000})
    rows = await cur.fetchall()
    if not rows:
        return 0

    def lost() -> list[QueuedJob]:
        return [
            QueuedJob.from_row(r)
            for r in rows
            if r[6] == "running" or not runtime.in_redis(r[7], r[8])
        ]

    missing = await asyncio.to_thread(lost)
    if missing:
        _log.warning("re-enqueueing jobs missing from Redis", count=len(missing))
    return await enqueue(runtime, missing)


async def list_jobs(
    conn: AsyncConnection[Any], *, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    cur = await conn.execute(_Q.list_jobs, {"status": status, "limit": limit})
    keys = (
        "actor",
        "job_key",
        "queue",
        "status",
        "attempts",
        "source",
        "correlation_id",
        "last_error",
        "created_at",
        "finished_at",
    )
    return [dict(zip(keys, r, strict=True)) for r in await cur.fetchall()]


async def counts(conn: AsyncConnection[Any]) -> list[tuple[str, str, int]]:
    cur = await conn.execute(_Q.job_counts)
    return [(r[0], r[1], int(r[2])) for r in await cur.fetchall()]


async def revive_dead(
    conn: AsyncConnection[Any], *, actor: str | None = None, job_key: str | None = None
) -> list[QueuedJob]:
    """Dead jobs back to pending with a fresh retry budget (enqueue them after commit)."""
    cur = await conn.execute(_Q.revive_dead, {"actor": actor, "job_key": job_key})
    return [QueuedJob.from_row(r) for r in await cur.fetchall()]


def payload_text(payload: dict[str, Any]) -> str:
    return msgspec.json.encode(payload).decode()
