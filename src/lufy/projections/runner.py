"""The projector: every async projection and reactor, exactly once, in log order.

For each projection a task competes for an advisory lock (leadership); the winner reads the log
gap-free from the projection's checkpoint (EventStore.read_all through a Subscription, woken by
NOTIFY) and hands each batch to the log-applier (`projections.applier.apply_batch`), which
applies it together with the new checkpoint in one transaction, as role `system` with the
search_path on the live schema. The checkpoint row is locked and compared at the start of each
batch, so even two leaders (a lock lost with its connection) never apply an event twice. A batch
that keeps failing is split to find the event; that event is retried with backoff and then the
projection stops there, `failed`, while the others go on. A reactor's jobs are recorded in the
same transaction and enqueued after commit.

On taking the lead (`projections.takeover`), a version that differs from the live one triggers
a rebuild (shadow schema, swap) before the projection applies anything new. The maintenance
loop (its own leader) sweeps lost jobs back to Redis and enqueues the periodic analytics refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint, RecordedEvent
from lufy.eventstore.postgres import EventStore
from lufy.eventstore.subscription import Subscription
from lufy.jobs.broker import JobRuntime, QueuedJob, configure, obtain
from lufy.jobs.ledger import enqueue
from lufy.logs import configure_logging, get_logger
from lufy.projections.applier import Batch, LiveCheckpoint, Moved, apply_batch
from lufy.projections.base import Projection
from lufy.projections.context import NS_LIVE, Q, checkpoint_of, process_label
from lufy.projections.discovery import all_projections
from lufy.projections.maintenance import maintain
from lufy.projections.options import ProjectorOptions, ProjectorResources
from lufy.projections.reactors import Reactor
from lufy.projections.takeover import kind_of, take_over
from lufy.settings import Settings

__all__ = ["Projector", "ProjectorOptions", "ProjectorResources", "kind_of", "run_projector"]

_log = get_logger(__name__)


class _Poisoned(Exception):
    def __init__(self, event: RecordedEvent, error: BaseException) -> None:
        super().__init__(f"event {event.global_position} ({event.type}): {error}")
        self.event = event
        self.error = error


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:2000]


class ProjectionTask:
    """Leadership and processing of one projection in this process."""

    def __init__(self, projector: Projector, projection: Projection) -> None:
        self.projector = projector
        self.projection = projection
        self.name = projection.name
        self.types = sorted(projection.handles)
        self._stopped = asyncio.Event()
        self._subscription: Subscription | None = None
        self.failed = False
        self.leading = False

    def stop(self) -> None:
        self._stopped.set()
        if self._subscription is not None:
            self._subscription.stop()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout=seconds)

    # --- leadership ---------------------------------------------------------------------------

    async def run(self) -> None:
        opts = self.projector.options
        while not self._stopped.is_set():
            try:
                conn = await AsyncConnection.connect(
                    self.projector.url,
                    autocommit=True,
                    application_name=process_label("projector"),
                )
            except psycopg.OperationalError as exc:
                _log.warning("projector cannot connect", error=str(exc).strip())
                await self._sleep(opts.lead_retry_interval)
                continue
            async with conn:
                try:
                    while not self._stopped.is_set():
                        cur = await conn.execute(Q.try_lead, {"ns": NS_LIVE, "name": self.name})
                        row = await cur.fetchone()
                        if row and row[0]:
                            break
                        await self._sleep(opts.lead_retry_interval)
                    if self._stopped.is_set():
                        return
                    self.leading = True
                    _log.info("leading projection", projection=self.name)
                    await self._lead(conn)
                except psycopg.OperationalError as exc:
                    _log.warning(
                        "projection lost its connection", projection=self.name, error=str(exc)
                    )
                except Exception as exc:
                    # A failed version rebuild, a bug in the runner: visible in status, retried
                    # later, and never the end of the other projections.
                    _log.exception("projection task failed", projection=self.name)
                    await self._record_crash(exc)
                    await self._sleep(opts.failed_retry_interval)
                finally:
                    self.leading = False
            await self._sleep(opts.lead_retry_interval)

    async def _record_crash(self, exc: BaseException) -> None:
        try:
            async with await AsyncConnection.connect(self.projector.url, autocommit=True) as c:
                await c.execute(
                    Q.mark_failed,
                    {
                        "name": self.name,
                        "position": None,
                        "event_id": None,
                        "error": _describe(exc),
                    },
                )
        except psycopg.Error:
            pass

    async def _lead(self, conn: AsyncConnection[Any]) -> None:
        self.failed = await take_over(
            self.projector.url,
            conn,
            self.projection,
            self.projector.store,
            rebuild_batch_size=self.projector.options.rebuild_batch_size,
        )
        if self.projection.inline:
            # Inline projections are applied by their writers; the projector only rebuilds them
            # on a version change, then steps down.
            await conn.execute(Q.unlead, {"ns": NS_LIVE, "name": self.name})
            self._stopped.set()
            return
        while not self._stopped.is_set():
            if self.failed:
                await self._wait_while_failed(conn)
                if self._stopped.is_set():
                    return
            await self._follow(conn)

    # --- processing ---------------------------------------------------------------------------

    async def _checkpoint(self, conn: AsyncConnection[Any]) -> Checkpoint:
        cur = await conn.execute(Q.get_checkpoint, {"name": self.name})
        return checkpoint_of(await cur.fetchone())

    async def _follow(self, conn: AsyncConnection[Any]) -> None:
        opts = self.projector.options
        checkpoint = await self._checkpoint(conn)
        sub = Subscription(
            self.projector.store,
            self.projector.url,
            after=checkpoint,
            types=self.types,
            batch_size=opts.batch_size,
            poll_interval=opts.poll_interval,
        )
        self._subscription = sub
        if self._stopped.is_set():
            return
        try:
            async for page in sub.pages(conn):
                try:
                    await self._apply(conn, checkpoint, page.events, page.checkpoint)
                    checkpoint = page.checkpoint
                except Moved as moved:
                    _log.info("checkpoint moved", projection=self.name, to=moved.checkpoint)
                    checkpoint = moved.checkpoint
                    sub.checkpoint = checkpoint
                except _Poisoned as poison:
                    await self._fail(conn, poison)
                    return
        finally:
            self._subscription = None

    async def _apply(
        self,
        conn: AsyncConnection[Any],
        before: Checkpoint,
        events: Sequence[RecordedEvent],
        after: Checkpoint,
    ) -> None:
        """Apply a page with retries; isolate and report the event that keeps failing."""
        last: BaseException | None = None
        for delay in (0.0, *self.projector.options.retry_delays):
            if delay:
                await self._sleep(delay)
                if self._stopped.is_set():
                    raise Moved(before)  # let the caller unwind; nothing was applied
            try:
                await self._apply_once(conn, before, events, after)
                return
            except (Moved, psycopg.OperationalError):
                raise
            except Exception as exc:
                last = exc
                _log.warning(
                    "projection batch failed",
                    projection=self.name,
                    events=len(events),
                    first=events[0].global_position if events else None,
                    error=_describe(exc),
                )
        assert last is not None
        if len(events) == 1:
            raise _Poisoned(events[0], last)
        if not events:
            raise last
        cursor = before
        for event in events:
            await self._apply(conn, cursor, [event], event.checkpoint)
            cursor = event.checkpoint
        await self._apply_once(conn, cursor, [], after)

    async def _apply_once(
        self,
        conn: AsyncConnection[Any],
        before: Checkpoint,
        events: Sequence[RecordedEvent],
        after: Checkpoint,
    ) -> None:
        resuming = self.failed and bool(events)
        jobs = await apply_batch(
            conn,
            [self.projection],
            Batch(before, after, events),
            cursor=LiveCheckpoint(self.name, clears_failure=resuming),
        )
        if resuming:
            self.failed = False
            _log.info("projection resumed", projection=self.name)
        if jobs:
            await self.projector.enqueue(jobs)
        self.projector.applied(self.name, len(events), events)

    async def _fail(self, conn: AsyncConnection[Any], poison: _Poisoned) -> None:
        event = poison.event
        self.failed = True
        await conn.execute(
            Q.mark_failed,
            {
                "name": self.name,
                "position": event.global_position,
                "event_id": event.event_id,
                "error": _describe(poison.error),
            },
        )
        _log.error(
            "projection stopped at a failing event",
            projection=self.name,
            position=event.global_position,
            event_type=event.type,
            error=_describe(poison.error),
        )

    async def _wait_while_failed(self, conn: AsyncConnection[Any]) -> None:
        """Until an operator skips the event (the checkpoint moves) or it is time to retry."""
        opts = self.projector.options
        stuck_at = await self._checkpoint(conn)
        deadline = time.monotonic() + opts.failed_retry_interval
        while not self._stopped.is_set() and time.monotonic() < deadline:
            await self._sleep(opts.failed_check_interval)
            now_at = await self._checkpoint(conn)
            if now_at != stuck_at:
                _log.info("failed projection moved on (skip)", projection=self.name, to=now_at)
                await conn.execute(Q.mark_running, {"name": self.name})
                self.failed = False
                return


class Projector:
    """Runs projection tasks (and, optionally, maintenance) until stopped."""

    def __init__(
        self,
        settings: Settings,
        projections: Sequence[Projection],
        *,
        options: ProjectorOptions | None = None,
        store: EventStore | None = None,
        runtime: JobRuntime | None = None,
    ) -> None:
        self.settings = settings
        self.url = settings.DATABASE_URL
        self.projections = list(projections)
        self.options = options or ProjectorOptions()
        # The entry point passes its container's store; tests may leave it to a plain one.
        self.store = store or EventStore()
        self.tasks = [ProjectionTask(self, p) for p in self.projections]
        # The job runtime of the process that runs this projector (`run_projector` builds it
        # and closes it); without one, `run` obtains this process's for its settings.
        self.runtime: JobRuntime | None = runtime
        self._owns_runtime = False
        self._stopped = asyncio.Event()
        self.applied_events: dict[str, int] = {}

    def stop(self) -> None:
        self._stopped.set()
        for task in self.tasks:
            task.stop()

    def applied(self, name: str, count: int, events: Sequence[RecordedEvent]) -> None:
        self.applied_events[name] = self.applied_events.get(name, 0) + count

    async def enqueue(self, jobs: Sequence[QueuedJob]) -> None:
        if self.runtime is None:
            return  # the sweeper of a projector with a broker sends them
        await enqueue(self.runtime, jobs)

    async def _maintenance(self) -> None:
        assert self.runtime is not None
        await maintain(self, self.runtime, self._stopped)

    async def run(self) -> None:
        needs_broker = self.options.maintenance or any(
            isinstance(p, Reactor) for p in self.projections
        )
        if needs_broker and self.runtime is None:
            self.runtime, self._owns_runtime = await asyncio.to_thread(obtain, self.settings)
        jobs = [asyncio.create_task(t.run(), name=f"projection:{t.name}") for t in self.tasks]
        if self.options.maintenance and self.runtime is not None:
            jobs.append(asyncio.create_task(self._maintenance(), name="maintenance"))
        _log.info("projector started", projections=[t.name for t in self.tasks])
        try:
            await self._stopped.wait()
        finally:
            self.stop()
            results = await asyncio.gather(*jobs, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError
                ):
                    _log.error("projector task crashed", error=_describe(result))
            if self.runtime is not None and self._owns_runtime:
                await asyncio.to_thread(self.runtime.close)
                self.runtime, self._owns_runtime = None, False
            _log.info("projector stopped")


def run_projector(
    container: ProjectorResources,
    *,
    options: ProjectorOptions | None = None,
    only_maintenance: bool = False,
) -> None:
    """`lufy projector`: every discovered async projection and reactor, and the maintenance
    loop (job sweeper, periodic analytics refresh), until SIGTERM/SIGINT.

    `container` is the entry point's (`bootstrap()`): the projector takes its settings and its
    event store and closes it after. The projector's tasks hold connections of their own, so
    the container's pool is never opened here. The process owns one job runtime (broker and
    ledger pool), built here, passed to the projector and closed at the end."""
    settings = container.settings
    configure_logging(settings.LUFY_ENV)
    found = [] if only_maintenance else all_projections()

    async def main() -> None:
        runtime = await asyncio.to_thread(configure, settings)
        projector = Projector(
            settings, found, options=options, store=container.store, runtime=runtime
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, projector.stop)
        try:
            await projector.run()
        finally:
            await asyncio.to_thread(runtime.close)
            await container.stop()

    asyncio.run(main())
