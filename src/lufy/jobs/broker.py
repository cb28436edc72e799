"""The dramatiq Redis broker, the job actors bound to it, and the PostgreSQL job ledger.

One `JobRuntime` per process (`configure(settings)`): it owns the broker, a small synchronous
connection pool for the ledger (dramatiq runs actors in threads), and declares an actor for
every `@job`. Enqueueing needs no actor: the projector enqueues by name, so it never imports
the job modules (their dependencies, ffmpeg and e-mail clients, stay in the workers).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import msgspec
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware, Retries
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from lufy.db import connection_kwargs
from lufy.jobs.registry import JobDefinition, definitions, on_declare
from lufy.logs import get_logger
from lufy.settings import Settings, get_settings
from lufy.sqlfiles import load_queries

__all__ = ["JobRuntime", "QueuedJob", "configure", "current", "enqueue_message", "obtain"]

_Q = load_queries("lufy.jobs")
_log = get_logger(__name__)
_lock = threading.RLock()  # configure() runs under it from obtain()
_runtime: JobRuntime | None = None


@dataclass(frozen=True)
class QueuedJob:
    """A job to put on Redis (what the ledger knows about it)."""

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
    actors: dict[str, dramatiq.Actor[Any, Any]] = field(default_factory=dict)

    # --- the ledger ---------------------------------------------------------------------------

    def _execute(self, query: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def claim(
        self, d: JobDefinition, payload: dict[str, Any], key: str, meta: dict[str, Any]
    ) -> bool:
        rows = self._execute(
            _Q.claim_job,
            {
                "actor": d.name,
                "job_key": key,
                "queue": d.queue,
                "payload": Jsonb(payload),
                "correlation_id": meta.get("correlation_id"),
                "causation_id": meta.get("causation_id"),
                # Past the time limit the run is certainly over; a little slack for the commit.
                "lease_seconds": d.time_limit_ms / 1000 + 30,
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

    def declare(self, d: JobDefinition) -> None:
        if d.name in self.actors:
            return
        self.actors[d.name] = dramatiq.Actor(
            _actor_body(d),
            broker=self.broker,
            actor_name=d.name,
            queue_name=d.queue,
            priority=0,
            options={
                "max_retries": d.max_retries,
                "min_backoff": d.min_backoff_ms,
                "max_backoff": d.max_backoff_ms,
                "time_limit": d.time_limit_ms,
            },
        )

    def close(self) -> None:
        self.pool.close()
        self.broker.close()


def _actor_body(d: JobDefinition) -> Callable[..., None]:
    def run(payload: dict[str, Any], job_key: str, meta: dict[str, Any] | None = None) -> None:
        meta = meta or {}
        rt = current()
        with structlog.contextvars.bound_contextvars(
            job=d.name,
            job_key=job_key,
            correlation_id=meta.get("correlation_id"),
            causation_id=meta.get("causation_id"),
        ):
            if not rt.claim(d, payload, job_key, meta):
                _log.info("job already done or running elsewhere; delivery dropped")
                return
            try:
                if d.is_async:
                    asyncio.run(d.fn(payload, job_key=job_key))
                else:
                    d.fn(payload, job_key=job_key)
            except BaseException as exc:
                rt.fail(d.name, job_key, _describe(exc))
                _log.warning("job failed", error=_describe(exc))
                raise
            rt.complete(d.name, job_key)
            _log.info("job done")

    run.__name__ = d.name
    run.__qualname__ = d.name
    return run


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:2000]


class LedgerMiddleware(Middleware):
    """Keeps lufy.jobs in step with Redis: where each message sits, and which jobs are dead."""

    def after_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int
    ) -> None:
        key = message.kwargs.get("job_key") if isinstance(message.kwargs, dict) else None
        redis_id = message.options.get("redis_message_id")
        if key is None or redis_id is None or _runtime is None:
            return
        try:
            _runtime.note_enqueued(message.actor_name, key, message.queue_name, redis_id)
        except Exception as exc:  # the sweeper only re-enqueues a little early without it
            _log.warning("could not note an enqueued job", error=str(exc).strip())

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not message.failed or _runtime is None:
            return
        key = message.kwargs.get("job_key")
        if key is not None:
            error = _describe(exception)
            _runtime.bury(message.actor_name, key, error)
            _log.error("job dead after its retries", job=message.actor_name, job_key=key)
            _after_death(message.actor_name, message.kwargs.get("payload") or {}, key, error)


def _after_death(actor: str, payload: dict[str, Any], key: str, error: str) -> None:
    """The dead job's `on_dead`, if it has one; a failure there is logged, never raised (the
    worker must go on, and the job is already listed as dead for an operator)."""
    d = definitions().get(actor)
    if d is None or d.on_dead is None:
        return
    try:
        if inspect.iscoroutinefunction(d.on_dead):
            asyncio.run(d.on_dead(payload, job_key=key, error=error))
        else:
            d.on_dead(payload, job_key=key, error=error)
    except Exception as exc:
        _log.error("on_dead of a dead job failed", job=actor, job_key=key, error=_describe(exc))


def configure(settings: Settings | None = None, *, pool_size: int = 4) -> JobRuntime:
    """Build this process's runtime (replacing any earlier one) and make its broker global."""
    global _runtime
    settings = settings or get_settings()
    with _lock:
        if _runtime is not None:
            _runtime.close()
        broker = RedisBroker(url=settings.REDIS_URL)  # type: ignore[no-untyped-call]
        # after_* hooks run in reverse order: placed before Retries, ours sees its verdict.
        broker.add_middleware(LedgerMiddleware(), before=Retries)
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
        for d in definitions().values():
            rt.declare(d)
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
            return existing, False
        return configure(settings), True


def current() -> JobRuntime:
    """The runtime of this process, configured from the environment on first use."""
    return _runtime if _runtime is not None else configure()


def _declare_late(d: JobDefinition) -> None:
    if _runtime is not None:
        _runtime.declare(d)


on_declare(_declare_late)
