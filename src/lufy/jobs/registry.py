"""`@job`: declare a job function; the worker turns it into a dramatiq actor.

Declaration is separate from the broker so that importing a context's `jobs` module never needs
Redis, and tests can bind the same functions to a broker of their own (`lufy.jobs.broker`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["QUEUES", "JobDefinition", "definitions", "job"]

# The queues of CONTRACT.md section 2; a job may name another, but `lufy worker` serves these.
QUEUES = ("analytics-refresh", "email-send", "media-processing")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class JobDefinition:
    name: str
    queue: str
    fn: Callable[..., Any]
    max_retries: int
    min_backoff_ms: int
    max_backoff_ms: int
    time_limit_ms: int
    # Called once when the job is dead (its retries spent): `on_dead(payload, job_key=…,
    # error=…)`, sync or async, to leave the domain in an honest state (a track stuck in
    # "processing" becomes "failed"). It runs in the worker; its own failure is logged.
    on_dead: Callable[..., Any] | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)


_DEFINITIONS: dict[str, JobDefinition] = {}
_listeners: list[Callable[[JobDefinition], None]] = []


def job(
    queue: str,
    *,
    name: str | None = None,
    max_retries: int = 8,
    min_backoff_ms: int = 1_000,
    max_backoff_ms: int = 600_000,
    time_limit_ms: int = 600_000,
    on_dead: Callable[..., Any] | None = None,
) -> Callable[[F], F]:
    """Declare `fn(payload: dict, *, job_key: str)` (sync or async) as a job on `queue`.

    The actor is named after the function (or `name`). Each delivery is claimed in PostgreSQL
    first: a job already done is skipped, one running elsewhere is left alone, so the function
    runs to completion once per job key; it must still be idempotent on `job_key` for its
    external effect (a crash can come after the e-mail left and before `done` was recorded).
    Failures retry with exponential backoff (`min_backoff_ms` doubling up to `max_backoff_ms`),
    and after `max_retries` the job is dead: listed by `lufy jobs dead`, retried by
    `lufy jobs retry`, and `on_dead(payload, job_key=…, error=…)` (sync or async) is called once
    then. The function is returned unchanged, so it can be called directly.
    """

    def decorate(fn: F) -> F:
        definition = JobDefinition(
            name=name or fn.__name__,
            queue=queue,
            fn=fn,
            max_retries=max_retries,
            min_backoff_ms=min_backoff_ms,
            max_backoff_ms=max_backoff_ms,
            time_limit_ms=time_limit_ms,
            on_dead=on_dead,
        )
        known = _DEFINITIONS.get(definition.name)
        if known is not None and known.fn is not fn and _qualname(known.fn) != _qualname(fn):
            raise ValueError(f"job {definition.name!r} is declared twice")
        _DEFINITIONS[definition.name] = definition
        for listener in list(_listeners):
            listener(definition)
        return fn

    return decorate


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def definitions() -> dict[str, JobDefinition]:
    return dict(_DEFINITIONS)


def on_declare(listener: Callable[[JobDefinition], None]) -> None:
    """Call `listener` for each job declared from now on (the broker binds late imports)."""
    _listeners.append(listener)
