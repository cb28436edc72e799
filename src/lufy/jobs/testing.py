"""Run jobs inside a test: an in-process dramatiq worker bound to the test's settings.

with InProcessWorker(settings, queues=["email-send"]) as worker:
    ...  # record jobs (a reactor through the projector, or lufy.jobs.ledger.record)
    worker.wait_until_finished(timeout=10)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType

import dramatiq

from lufy.jobs.broker import JobRuntime, obtain
from lufy.jobs.registry import QUEUES
from lufy.settings import Settings
from lufy.sqlfiles import load_queries

__all__ = ["InProcessWorker"]

_Q = load_queries("lufy.jobs", "testing.sql")


class InProcessWorker:
    def __init__(
        self, settings: Settings, *, queues: Sequence[str] = QUEUES, threads: int = 2
    ) -> None:
        self.settings = settings
        self.queues = list(queues)
        self.threads = threads
        self.runtime: JobRuntime | None = None
        self._worker: dramatiq.Worker | None = None
        self._owns = False

    def __enter__(self) -> InProcessWorker:
        self.runtime, self._owns = obtain(self.settings)
        self.runtime.boot()
        self._worker = dramatiq.Worker(
            self.runtime.broker, queues=set(self.queues), worker_threads=self.threads
        )
        self._worker.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._worker is not None:
            self._worker.stop(timeout=10_000)
        if self.runtime is not None and self._owns:
            self.runtime.close()

    def unfinished(self) -> int:
        assert self.runtime is not None
        with self.runtime.pool.connection() as conn:
            row = conn.execute(_Q.unfinished, [self.queues]).fetchone()
        return int(row[0]) if row else 0

    def wait_until_finished(self, timeout: float = 30.0) -> None:
        """Until no job on these queues is pending, running or retrying (done or dead)."""
        deadline = time.monotonic() + timeout
        while self.unfinished():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.unfinished()} job(s) still unfinished")
            time.sleep(0.05)
