"""The dramatiq Redis broker, the job actors bound to it, and the PostgreSQL job ledger.

One `JobRuntime` per process, built by the process that needs it (`lufy worker`'s
`serve_queues`, `run_projector`) with `configure(settings)`, passed to what uses it and closed
by that process: it owns the broker (with the ledger
middleware, `JobLedger`, and the worker's event loop, `WorkerLoopMiddleware`), a small
synchronous connection pool for the ledger (dramatiq runs actors in threads), and declares on
its broker every actor declared with `@job`. Enqueueing needs no actor: the projector enqueues by
name, so it never imports the job modules (their dependencies, ffmpeg and e-mail clients, stay
in the workers).

The module still keeps the last configured runtime (`current()`, `obtain`): dramatiq's actors are
module-level and its broker is global (`dramatiq.set_broker`), and a test runs a worker and a
projector in one process that must share one runtime (`obtain`). A job itself reads the runtime
that delivered its message (`job_runtime()`), not the global.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import dramatiq
import msgspec
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Retries
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from lufy.db import connection_kwargs
from lufy.jobs.ledger_middleware import JobLedger, delivering
from lufy.jobs.loop import WorkerLoop, WorkerLoopMiddleware
from lufy.jobs.registry import DECLARATIONS
from lufy.logs import get_logger
from lufy.settings import Settings, get_settings
from lufy.sqlfiles import load_queries

__all__ = [
    "JobRuntime",
    "QueuedJob",
    "configure",
    "current",
    "enqueue_message",
    "job_runtime",
    "obtain",
]

_Q = load_queries("lufy.jobs")
_log = get_logger(__name__)
_lock = threading.RLock()  # configure() runs under it from obtain()
_runtime: JobRuntime | None = None


@dataclass(frozen=True)
class QueuedJob:
    """A job to put on Redis: a ledger row (what the ledger knows about it), never built from
    a request directly (`lufy.jobs.spec` says why a request, `JobSpec`, is another type)."""

    actor: str
    job_key: str
    queue: str
    payload: dict[str, Any]
    correlation_id: str | None = None
    causation_id: str | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> QueuedJob:
        return cls(
            actor=row[0],
            job_key=row[1],
            queue=row[2],
            payload=msgspec.json.decode(row[3]) if isinstance(row[3], str) else row[3],
            correlation_id=row[4],
            causation_id=row[5],
        )


def enqueue_message(job: QueuedJob) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=job.queue,
        actor_name=job.actor,
        args=(),
        kwargs={
            "payload": job.payload,
            "job_key": job.job_key,
            "meta": {"correlation_id": job.correlation_id, "causation_id": job.causation_id},
        },
        options={},
    )


@dataclass
class JobRuntime:
    settings: Settings
    broker: RedisBroker
    pool: ConnectionPool
    booted: bool = False

    def boot(self) -> None:
        """Run the middleware's process-boot hooks once, before a worker starts: dramatiq's
        `TimeLimit` starts the thread that interrupts a job past its `time_limit` there (the
        ledger's lease, time limit + 30 s, relies on it). dramatiq's own CLI does this; `lufy
        worker` starts `dramatiq.Worker` itself, so it must too."""
        with _lock:
            if not self.booted:
                self.broker.emit_after("process_boot")
                self.booted = True

    # --- the ledger ---------------------------------------------------------------------------

    def _execute(self, query: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def claim(
        self,
        actor: dramatiq.Actor[Any, Any],
        payload: dict[str, Any],
        key: str,
        meta: dict[str, Any],
    ) -> bool:
        time_limit_ms = actor.options.get("time_limit", 600_000)
        rows = self._execute(
            _Q.claim_job,
            {
                "actor": actor.actor_name,
                "job_key": key,
                "queue": actor.queue_name,
                "payload": Jsonb(payload),
                "correlation_id": meta.get("correlation_id"),
                "causation_id": meta.get("causation_id"),
                # Past the time limit the run is certainly over; a little slack for the commit.
                "lease_seconds": time_limit_ms / 1000 + 30,
            },
        )
        return bool(rows)

    def complete(self, actor: str, key: str) -> None:
        self._execute(_Q.complete_job, {"actor": actor, "job_key": key})

    def fail(self, actor: str, key: str, error: str) -> None:
        self._execute(_Q.fail_job, {"actor": actor, "job_key": key, "error": error})

    def bury(self, actor: str, key: str, error: str | None) -> None:
        self._execute(_Q.bury_job, {"actor": actor, "job_key": key, "error": error})

    def note_enqueued(self, actor: str, key: str, redis_queue: str, redis_id: str) -> None:
        self._execute(
            _Q.note_enqueued,
            {
                "actor": actor,
                "job_key": key,
                "redis_queue": redis_queue,
                "redis_message_id": redis_id,
            },
        )

    # --- Redis --------------------------------------------------------------------------------

    def enqueue(self, job: QueuedJob) -> None:
        self.broker.enqueue(enqueue_message(job))

    def in_redis(self, redis_queue: str | None, redis_id: str | None) -> bool:
        """Whether the broker still holds this message (queued, delayed, or being worked on)."""
        if not redis_queue or not redis_id:
            return False
        key = f"{self.broker.namespace}:{redis_queue}.msgs"
        return bool(self.broker.client.hexists(key, redis_id))

    # --- actors -------------------------------------------------------------------------------

    def declare_all(self) -> None:
        """Declare on this broker every `@job` actor not yet on it (job modules imported late)."""
        for name, actor in list(DECLARATIONS.actors.items()):
            if name not in self.broker.actors:
                self.broker.declare_actor(actor)
            actor.broker = self.broker

    def close(self) -> None:
        self.pool.close()
        self.broker.close()


def configure(settings: Settings | None = None, *, pool_size: int = 4) -> JobRuntime:
    """Build this process's runtime (replacing any earlier one) and make its broker global."""
    global _runtime
    settings = settings or get_settings()
    with _lock:
        if _runtime is not None:
            _runtime.close()
        broker = RedisBroker(url=settings.REDIS_URL)  # type: ignore[no-untyped-call]
        ledger = JobLedger()
        # after_* hooks run in reverse order: placed before Retries, the ledger sees its verdict.
        broker.add_middleware(ledger, before=Retries)
        broker.add_middleware(WorkerLoopMiddleware(WorkerLoop(settings)))
        dramatiq.set_broker(broker)
        pool: ConnectionPool = ConnectionPool(
            settings.DATABASE_URL,
            min_size=1,
            max_size=pool_size,
            kwargs=connection_kwargs(prepare=settings.DATABASE_PREPARED_STATEMENTS),
            open=True,
            name="lufy-jobs",
        )
        rt = JobRuntime(settings=settings, broker=broker, pool=pool)
        ledger.ledger = rt
        rt.declare_all()
        _runtime = rt
        return rt


def obtain(settings: Settings) -> tuple[JobRuntime, bool]:
    """This process's runtime for `settings`: the existing one when it uses the same database
    and Redis (a worker and a projector sharing a process), else a new one. The flag says
    whether it is new (then the caller closes it)."""
    # Under the lock: a projector and a worker starting together in one process must share
    # one runtime, not each replace (and close) the other's.
    with _lock:
        existing = _runtime
        if (
            existing is not None
            and existing.settings.DATABASE_URL == settings.DATABASE_URL
            and existing.settings.REDIS_URL == settings.REDIS_URL
        ):
            existing.declare_all()
            return existing, False
        return configure(settings), True


def current() -> JobRuntime:
    """The runtime of this process, configured from the environment on first use."""
    return _runtime if _runtime is not None else configure()


def job_runtime() -> JobRuntime:
    """For a job: the runtime whose worker runs it (its broker delivered the message, its pool
    records the outcome), passed in by the ledger middleware; outside a job, `current()`."""
    return delivering() or current()
