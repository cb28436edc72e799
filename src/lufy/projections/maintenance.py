"""Maintenance, leader-elected across projectors: the sweeper and the periodic refresh.

- The sweeper re-enqueues recorded jobs whose Redis message is gone (Redis restarted without
  persistence, a crash between commit and enqueue, a worker killed mid-job).
- The scheduler enqueues `refresh_analytics` on `analytics-refresh` every interval, recorded in
  lufy.jobs like any job, and never while the previous refresh is unfinished: one at a time.
- Likewise `sweep_abandoned_uploads` on `media-processing` every `upload_sweep_interval` (an
  hour): uploads never completed within 24 h are abandoned and their sources deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import AsyncConnection

from lufy.jobs.broker import JobRuntime
from lufy.jobs.ledger import enqueue, record, sweep
from lufy.jobs.spec import JobSpec
from lufy.logs import get_logger
from lufy.projections.context import NS_MAINTENANCE, Q, process_label
from lufy.sqlfiles import load_queries

if TYPE_CHECKING:
    from lufy.projections.runner import Projector

__all__ = [
    "REFRESH_ACTOR",
    "REFRESH_QUEUE",
    "UPLOAD_SWEEP_ACTOR",
    "maintain",
    "schedule_periodic",
    "schedule_refresh",
    "schedule_upload_sweep",
]

REFRESH_ACTOR = "refresh_analytics"
REFRESH_QUEUE = "analytics-refresh"
UPLOAD_SWEEP_ACTOR = "sweep_abandoned_uploads"
UPLOAD_SWEEP_QUEUE = "media-processing"
_JQ = load_queries("lufy.jobs")
_SQ = load_queries("lufy.projections", "maintenance.sql")
_log = get_logger(__name__)


async def schedule_refresh(
    conn: AsyncConnection[Any], runtime: JobRuntime, *, now: datetime | None = None
) -> bool:
    """Record and enqueue one refresh unless one is still unfinished. True when enqueued."""
    return await schedule_periodic(
        conn, runtime, actor=REFRESH_ACTOR, queue=REFRESH_QUEUE, key_prefix="refresh", now=now
    )


async def schedule_periodic(
    conn: AsyncConnection[Any],
    runtime: JobRuntime,
    *,
    actor: str,
    queue: str,
    key_prefix: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Record and enqueue one run of `actor` unless one is still unfinished; True when
    enqueued. Keyed by the moment (`{key_prefix or actor}:{moment}`), so two schedulers at the
    same second record one job."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    async with conn.transaction():
        # Serialise schedulers (two leaders for a moment) on the same decision.
        await conn.execute(_SQ.lock_schedule, {"ns": NS_MAINTENANCE, "actor": actor})
        cur = await conn.execute(_JQ.unfinished_of_actor, {"actor": actor})
        row = await cur.fetchone()
        if row and int(row[0]) > 0:
            return False
        queued = await record(
            conn,
            JobSpec(
                actor=actor,
                queue=queue,
                payload={"scheduled_at": moment.isoformat()},
                key=f"{key_prefix or actor}:{moment.isoformat()}",
                correlation_id=f"scheduler:{moment.isoformat()}",
            ),
            source="scheduler",
        )
    if queued is None:
        return False
    await enqueue(runtime, [queued])
    return True


async def schedule_upload_sweep(
    conn: AsyncConnection[Any], runtime: JobRuntime, *, now: datetime | None = None
) -> bool:
    """Record and enqueue one sweep of abandoned uploads unless one is unfinished."""
    return await schedule_periodic(
        conn, runtime, actor=UPLOAD_SWEEP_ACTOR, queue=UPLOAD_SWEEP_QUEUE, now=now
    )


async def maintain(projector: Projector, runtime: JobRuntime, stopped: asyncio.Event) -> None:
    opts = projector.options
    while not stopped.is_set():
        try:
            conn = await AsyncConnection.connect(
                projector.url, autocommit=True, application_name=process_label("maintenance")
            )
            async with conn:
                while not stopped.is_set():
                    cur = await conn.execute(
                        Q.try_lead, {"ns": NS_MAINTENANCE, "name": "maintenance"}
                    )
                    row = await cur.fetchone()
                    if row and row[0]:
                        break
                    await _sleep(stopped, opts.lead_retry_interval)
                next_sweep = 0.0
                next_refresh = time.monotonic() + min(opts.refresh_interval, 10.0)
                next_upload_sweep = time.monotonic() + min(opts.upload_sweep_interval, 60.0)
                while not stopped.is_set():
                    now = time.monotonic()
                    if now >= next_sweep:
                        swept = await sweep(conn, runtime, grace_seconds=opts.sweep_grace)
                        if swept:
                            _log.info("sweeper re-enqueued jobs", count=swept)
                        next_sweep = now + opts.sweep_interval
                    if opts.refresh_interval > 0 and now >= next_refresh:
                        if await schedule_refresh(conn, runtime):
                            _log.info("analytics refresh enqueued")
                        next_refresh = now + opts.refresh_interval
                    if opts.upload_sweep_interval > 0 and now >= next_upload_sweep:
                        if await schedule_upload_sweep(conn, runtime):
                            _log.info("abandoned-upload sweep enqueued")
                        next_upload_sweep = now + opts.upload_sweep_interval
                    wake = min(next_sweep, next_refresh, next_upload_sweep)
                    await _sleep(stopped, max(0.05, wake - time.monotonic()))
        except psycopg.OperationalError as exc:
            _log.warning("maintenance lost its connection", error=str(exc).strip())
            await _sleep(stopped, opts.lead_retry_interval)


async def _sleep(stopped: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopped.wait(), timeout=seconds)
