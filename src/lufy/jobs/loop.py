"""The worker's event loop: async jobs run there, on resources built once per worker.

A dramatiq worker runs actors in threads. Running each async job under its own `asyncio.run`
would need a new database pool per job (a pool belongs to one loop), so a worker process has one
event loop in a thread of its own (`WorkerLoop`, started and stopped with the dramatiq worker by
`WorkerLoopMiddleware`), and one `WorkerResources` on it: a connection pool, the event store and
the blob storage, opened on first use and closed when the worker stops. Async jobs reach them
with `in_worker(fn)`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import dramatiq
from dramatiq.middleware import Middleware

from lufy.db import Database
from lufy.eventstore import EventStore
from lufy.media.storage import BlobStorage, storage_from_settings
from lufy.settings import Settings

__all__ = [
    "WorkerLoop",
    "WorkerLoopMiddleware",
    "WorkerResources",
    "in_worker",
    "run_on_worker_loop",
]

T = TypeVar("T")


@dataclass
class WorkerResources:
    """What the async jobs of one worker process share."""

    settings: Settings
    db: Database
    store: EventStore
    storage: BlobStorage

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerResources:
        return cls(
            settings=settings,
            db=Database(
                settings.DATABASE_URL,
                min_size=1,
                max_size=4,
                name="lufy-worker",
                prepare=settings.DATABASE_PREPARED_STATEMENTS,
            ),
            store=EventStore(),
            storage=storage_from_settings(settings),
        )


class WorkerLoop:
    """An event loop in a thread of its own, with the resources of the jobs that run on it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._resources: WorkerResources | None = None
        self._lock: asyncio.Lock | None = None

    def start(self) -> None:
        if self.loop is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="lufy-worker-loop", daemon=True)
        self._thread.start()
        ready.wait()
        self.loop = loop

    def stop(self) -> None:
        loop, thread = self.loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        self.loop = self._thread = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on this loop from another thread, in a copy of the caller's context (so
        its logs carry the job's bound fields), and wait for it."""
        assert self.loop is not None
        context = contextvars.copy_context()
        future = asyncio.run_coroutine_threadsafe(_in_context(coro, context), self.loop)
        try:
            # Waiting in short slices keeps this thread running Python code, so dramatiq's
            # asynchronously raised interrupts (a time limit, a shutdown) reach it.
            while True:
                try:
                    return future.result(timeout=0.1)
                except concurrent.futures.TimeoutError:
                    if future.done():
                        return future.result(timeout=0)
        except dramatiq.middleware.Interrupt:
            # The job is interrupted: cancel it on the loop too, and let it clean up.
            self.loop.call_soon_threadsafe(future.cancel)
            raise

    async def resources(self) -> WorkerResources:
        """On this loop: the worker's resources, opened on first use."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._resources is None:
                resources = WorkerResources.from_settings(self.settings)
                await resources.db.open(wait=True)
                self._resources = resources
        return self._resources

    async def _close(self) -> None:
        if self._resources is not None:
            await self._resources.db.close()
            self._resources = None


async def _in_context(coro: Coroutine[Any, Any, T], context: contextvars.Context) -> T:
    return await asyncio.get_running_loop().create_task(coro, context=context)


_current: WorkerLoop | None = None


class WorkerLoopMiddleware(Middleware):
    """Starts the process's `WorkerLoop` with the dramatiq worker and stops it after."""

    def __init__(self, loop: WorkerLoop) -> None:
        self.worker_loop = loop

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        global _current
        self.worker_loop.start()
        _current = self.worker_loop

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        global _current
        self.worker_loop.stop()
        if _current is self.worker_loop:
            _current = None


def run_on_worker_loop(coro: Coroutine[Any, Any, T]) -> T:
    """From a worker thread: run `coro` on the worker's loop (or alone when no worker runs)."""
    loop = _current
    if loop is None or loop.loop is None:
        return asyncio.run(coro)
    return loop.run(coro)


async def in_worker(fn: Callable[[WorkerResources], Awaitable[T]]) -> T:
    """`await fn(resources)` on the worker's loop with its resources, from wherever it is
    awaited: on that loop directly, from another loop through it, and with resources of its
    own (opened and closed around the call) when no worker runs in this process."""
    loop = _current
    if loop is not None and loop.loop is not None:
        if asyncio.get_running_loop() is loop.loop:
            return await fn(await loop.resources())

        async def there() -> T:
            return await fn(await loop.resources())

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(there(), loop.loop))
    from lufy.jobs.broker import current  # the runtime imports this module

    resources = WorkerResources.from_settings(current().settings)
    await resources.db.open(wait=True)
    try:
        return await fn(resources)
    finally:
        await resources.db.close()
