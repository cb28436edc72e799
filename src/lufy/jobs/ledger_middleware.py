"""The job ledger as a dramatiq middleware: claim before running, record the outcome after.

`before_process_message` claims the job in PostgreSQL (`lufy.jobs`) and raises `SkipMessage`
when it is done already or running elsewhere; `after_process_message` records `done`, or the
failure, and when dramatiq's `Retries` has given up (the message failed for good) marks the job
dead and calls the actor's `on_dead` option. `after_enqueue` notes where Redis keeps the
message, for the sweeper. The hooks need a ledger (`JobRuntime`); without one (the stub broker
that declares the actors) they do nothing. While a message is processed, `delivering()` is the
runtime whose broker delivered it (a context variable, so an async job on the worker's loop sees
it too): `lufy.jobs.broker.job_runtime` hands it to the job.
"""

from __future__ import annotations

import contextvars
import inspect
import traceback
from typing import TYPE_CHECKING, Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware, SkipMessage

from lufy.jobs.loop import run_on_worker_loop
from lufy.logs import get_logger

if TYPE_CHECKING:
    from lufy.jobs.broker import JobRuntime

__all__ = ["JobLedger", "delivering", "describe"]

_log = get_logger(__name__)
_delivering: contextvars.ContextVar[JobRuntime | None] = contextvars.ContextVar(
    "lufy_job_runtime", default=None
)


def delivering() -> JobRuntime | None:
    """The runtime of the message this worker thread is processing (None outside a job)."""
    return _delivering.get()


def describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:2000]


class JobLedger(Middleware):
    """Placed before `Retries`: its after-hooks run after Retries' and see its verdict."""

    # `on_dead(payload, job_key=…, error=…)`, sync or async, called once when the job is dead.
    actor_options = {"on_dead"}

    def __init__(self, ledger: JobRuntime | None = None) -> None:
        self.ledger = ledger

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if self.ledger is None:
            return
        key = message.kwargs.get("job_key")
        meta = message.kwargs.get("meta") or {}
        structlog.contextvars.bind_contextvars(
            job=message.actor_name,
            job_key=key,
            correlation_id=meta.get("correlation_id"),
            causation_id=meta.get("causation_id"),
        )
        _delivering.set(self.ledger)
        actor = broker.get_actor(message.actor_name)
        payload = message.kwargs.get("payload") or {}
        if not self.ledger.claim(actor, payload, key, meta):
            _log.info("job already done or running elsewhere; delivery dropped")
            raise SkipMessage

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        _delivering.set(None)
        structlog.contextvars.unbind_contextvars("job", "job_key", "correlation_id", "causation_id")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if self.ledger is None:
            return
        try:
            self._record(broker, message, exception)
        finally:
            self.after_skip_message(broker, message)

    def _record(self, broker: dramatiq.Broker, message: Any, exc: BaseException | None) -> None:
        assert self.ledger is not None
        name, key = message.actor_name, message.kwargs.get("job_key")
        if key is None:
            return
        if exc is None:
            self.ledger.complete(name, key)
            _log.info("job done")
            return
        error = describe(exc)
        _log.warning("job failed", error=error)
        self.ledger.fail(name, key, error)
        if message.failed:
            self.ledger.bury(name, key, error)
            _log.error("job dead after its retries", job=name, job_key=key)
            on_dead = broker.get_actor(name).options.get("on_dead")
            if on_dead is not None:
                _after_death(on_dead, message.kwargs.get("payload") or {}, key, error)

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int) -> None:
        key = message.kwargs.get("job_key") if isinstance(message.kwargs, dict) else None
        redis_id = message.options.get("redis_message_id")
        if key is None or redis_id is None or self.ledger is None:
            return
        try:
            self.ledger.note_enqueued(message.actor_name, key, message.queue_name, redis_id)
        except Exception as exc:  # the sweeper only re-enqueues a little early without it
            _log.warning("could not note an enqueued job", error=str(exc).strip())


def _after_death(on_dead: Any, payload: dict[str, Any], key: str, error: str) -> None:
    """The dead job's `on_dead`; a failure there is logged, never raised (the worker must go
    on, and the job is already listed as dead for an operator)."""
    try:
        if inspect.iscoroutinefunction(on_dead):
            run_on_worker_loop(on_dead(payload, job_key=key, error=error))
        else:
            on_dead(payload, job_key=key, error=error)
    except Exception as exc:
        _log.error("on_dead of a dead job failed", job_key=key, error=describe(exc))
