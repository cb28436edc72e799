"""`@job`: declare a job function as a dramatiq actor, its options on the actor.

Actors are declared on `DECLARATIONS`, a stub broker, so that importing a context's `jobs`
module never needs Redis; `lufy.jobs.broker.configure` declares the same actors on the
process's Redis broker, and tests bind them to a broker of their own the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from lufy.jobs.ledger_middleware import JobLedger
from lufy.jobs.loop import run_on_worker_loop

__all__ = ["DECLARATIONS", "QUEUES", "JobActor", "job"]

# The queues of CONTRACT.md section 2; a job may name another, but `lufy worker` serves these.
QUEUES = ("analytics-refresh", "email-send", "media-processing")

# dramatiq's own registry of the declared actors (`DECLARATIONS.actors`), and the broker whose
# middleware validates their options (`on_dead` is the ledger's).
DECLARATIONS = StubBroker()
DECLARATIONS.add_middleware(JobLedger())


class JobActor(dramatiq.Actor[..., None]):
    """A dramatiq actor that keeps its function's name (`process_upload.__name__`)."""

    @property
    def __name__(self) -> str:
        return self.actor_name


def job(
    queue: str,
    *,
    name: str | None = None,
    max_retries: int = 8,
    min_backoff_ms: int = 1_000,
    max_backoff_ms: int = 600_000,
    time_limit_ms: int = 600_000,
    on_dead: Callable[..., Any] | None = None,
) -> Callable[[Callable[..., Any]], JobActor]:
    """Declare `fn(payload: dict, *, job_key: str)` (sync or async) as an actor on `queue`.

    The actor is named after the function (or `name`). Each delivery is claimed in PostgreSQL
    first (`JobLedger`): a job already done is skipped, one running elsewhere is left alone, so
    the function runs to completion once per job key; it must still be idempotent on `job_key`
    for its external effect (a crash can come after the e-mail left and before `done` was
    recorded). Failures retry with exponential backoff (`min_backoff_ms` doubling up to
    `max_backoff_ms`), and after `max_retries` the job is dead: listed by `lufy jobs dead`,
    retried by `lufy jobs retry`, and `on_dead(payload, job_key=…, error=…)` (sync or async) is
    called once then. Calling the actor runs the function at once (`refresh({}, job_key=…)`).
    """

    def decorate(fn: Callable[..., Any]) -> JobActor:
        actor_name = name or fn.__name__
        known = DECLARATIONS.actors.get(actor_name)
        if known is not None:
            if _qualname(getattr(known.fn, "job_function", known.fn)) != _qualname(fn):
                raise ValueError(f"job {actor_name!r} is declared twice")
            assert isinstance(known, JobActor)
            return known
        return JobActor(
            _body(fn),
            broker=DECLARATIONS,
            actor_name=actor_name,
            queue_name=queue,
            priority=0,
            options={
                "max_retries": max_retries,
                "min_backoff": min_backoff_ms,
                "max_backoff": max_backoff_ms,
                "time_limit": time_limit_ms,
                "on_dead": on_dead,
            },
        )

    return decorate


def _body(fn: Callable[..., Any]) -> Callable[..., None]:
    """What dramatiq calls: the message's `meta` (correlation ids, read by the ledger) is not
    the function's business, and an async function runs on the worker's event loop."""

    def run(payload: dict[str, Any], job_key: str, meta: dict[str, Any] | None = None) -> None:
        if inspect.iscoroutinefunction(fn):
            run_on_worker_loop(fn(payload, job_key=job_key))
        else:
            fn(payload, job_key=job_key)

    run.job_function = fn  # type: ignore[attr-defined]
    run.__name__ = fn.__name__
    run.__qualname__ = fn.__qualname__
    run.__module__ = fn.__module__
    return run


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"
