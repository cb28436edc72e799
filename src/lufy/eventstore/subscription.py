"""Follow the log: gap-free pages, woken by LISTEN/NOTIFY, with polling as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Any

import msgspec
import psycopg
from psycopg import AsyncConnection

from lufy.eventstore import younggc
from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.postgres import EventStore, Page, RawPage
from lufy.eventstore.readahead import parallel_pages
from lufy.logs import get_logger

__all__ = ["CHANNEL", "Subscription"]

CHANNEL = "lufy_events"
_log = get_logger(__name__)


class Subscription:
    """Yields pages of events after a checkpoint, forever (until `stop()`).

    A reader sleeps until a NOTIFY on `lufy_events` or `poll_interval`, whichever comes first,
    so events written without a NOTIFY (another tool, a lost listen connection) are still found.
    A page that is not full is followed by a check for committed events that an open
    transaction still holds behind the read barrier: while there are some, the reader is not
    caught up and looks again after `settle_delays` (then every `settle_delays[-1]`) instead
    of sleeping, because their NOTIFY has already been spent.
    """

    def __init__(
        self,
        store: EventStore,
        url: str,
        *,
        after: Checkpoint = Checkpoint.START,
        types: Collection[str] | None = None,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        settle_delays: tuple[float, ...] = (0.01, 0.03, 0.1, 0.25),
        read_ahead_pages: int = 20,
        read_ahead_connections: int = 2,
        read_ahead_events: int = 5000,
    ) -> None:
        self.store = store
        self.url = url
        self.checkpoint = after
        self.types = types
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.settle_delays = settle_delays or (0.05,)
        self.read_ahead_pages = max(1, read_ahead_pages)
        # Events per query of a read-ahead: a multiple of `batch_size`, each such page handed
        # out as pages of `batch_size` (a query and its decode cost about as much per page as
        # per event: docs/benchmarks.md, issue 18, fifth pass).
        self.read_ahead_limit = batch_size * max(1, read_ahead_events // batch_size)
        # Connections a read-ahead builds pages on at once (readahead.py): the server takes
        # about twice as long to build a page as this process to decode it.
        self._readers = _Readers(url, max(1, read_ahead_connections))
        # Set once the LISTEN is in place (and again after every reconnect).
        self.listening = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    async def _listen(self) -> None:
        while not self._stopped.is_set():
            try:
                conn = await AsyncConnection.connect(self.url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake.set()  # we may have missed notifications while reconnecting
                    self.listening.set()
                    async for _ in conn.notifies():
                        self._wake.set()
                        if self._stopped.is_set():
                            return
            except psycopg.Error as exc:
                self.listening.clear()
                _log.warning("listen connection lost", error=str(exc).strip())
                await asyncio.sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def pages(self, conn: AsyncConnection[Any]) -> AsyncIterator[Page]:
        """Pages read on `conn`; the caller applies each and then may persist `page.checkpoint`.

        Catching up (a page came back full), the pages that follow are asked for ahead, on
        connections of the subscription's own (readahead.parallel_pages: every page below the
        barrier the full page returned, where they end read `read_ahead_pages` at a time, built
        on `read_ahead_connections` at once, two waiting at most): the server builds the next
        pages while this process decodes one and the caller applies it. A read-ahead reads
        `read_ahead_limit` events per page and hands each out as pages of `batch_size`. A
        read-ahead whose next page no longer starts at `self.checkpoint` (the caller moved it,
        also between the pages of one read ahead) is dropped.
        """
        listener = asyncio.create_task(self._listen())
        catch_up = _CatchUp(self._readers)
        held_back = 0
        try:
            while not self._stopped.is_set():
                self._wake.clear()
                raw = await catch_up.take(self.checkpoint)
                if raw is None:
                    raw = await self.store.fetch_page(
                        conn, self.checkpoint, limit=self.batch_size, types=self.types
                    )
                if raw.full and catch_up.ahead is None:
                    await self._read_ahead(catch_up, raw)
                page = await self.store.decode_page(conn, raw)
                cut = False
                for part in _parts(page, self.batch_size):
                    moved = part.checkpoint != self.checkpoint
                    self.checkpoint = part.checkpoint
                    if part.events or moved:
                        yield part  # an empty page still lets the caller persist the range
                    cut = self.checkpoint != part.checkpoint  # the caller moved it
                    if cut or self._stopped.is_set():
                        break
                if cut or len(page.events) >= raw.limit or self._stopped.is_set():
                    continue
                if catch_up.ahead is not None:
                    # The end of a read-ahead, below an older barrier: ask again afresh.
                    await catch_up.end()
                    continue
                catch_up.idle()
                held_back = await self._wait(pending=page.pending, held_back=held_back)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await catch_up.close()

    async def _read_ahead(self, catch_up: _CatchUp, raw: RawPage) -> None:
        """Start reading the pages after the full page `raw` ahead, below its barrier."""
        conns = await catch_up.readers.open()
        catch_up.start(
            _ReadAhead(
                parallel_pages(
                    self.store,
                    conns,
                    raw.checkpoint,
                    limit=self.read_ahead_limit,
                    pages=self.read_ahead_pages,
                    barrier=raw.barrier,
                    types=self.types,
                    to_barrier=True,
                )
            )
        )
        await asyncio.sleep(0)  # let it send its query before this page decodes

    async def _wait(self, *, pending: bool, held_back: int) -> int:
        """Sleep before looking again, caught up; returns how many settle delays in a row the
        log has now held events back (0 when it held none)."""
        if pending:
            delays = self.settle_delays
            await self._sleep(delays[min(held_back, len(delays) - 1)])
            return held_back + 1
        await self._sleep(self.poll_interval)
        return 0


def _parts(page: Page, size: int) -> list[Page]:
    """`page` as pages of at most `size` events (a read-ahead reads `read_ahead_limit` at once):
    each ends at its last event, the last one where `page` ends."""
    events = page.events
    if len(events) <= size:
        return [page]
    parts = [
        Page(
            events=events[i : i + size],
            checkpoint=events[i + size - 1].checkpoint,
            barrier=page.barrier,
            pending=page.pending,
        )
        for i in range(0, len(events) - size, size)
    ]
    rest = events[len(parts) * size :]
    parts.append(msgspec.structs.replace(page, events=rest))
    return parts


class _CatchUp:
    """The read-ahead of one `Subscription.pages` loop, if any, and the connections it reads on
    (they stay open only while a catch-up lasts)."""

    def __init__(self, readers: _Readers) -> None:
        self.readers = readers
        self.ahead: _ReadAhead | None = None
        self._holding = False

    async def take(self, checkpoint: Checkpoint) -> RawPage | None:
        """The read-ahead's next page if it starts at `checkpoint`; otherwise (none, or the
        caller moved the checkpoint) the read-ahead is dropped and None returned."""
        if self.ahead is None:
            return None
        item = await self.ahead.next()
        if item is None or item.after != checkpoint:
            if await self._drop():
                await self.readers.close()  # new ones are opened for the next read-ahead
            return None
        return item

    def start(self, ahead: _ReadAhead) -> None:
        """A read-ahead starts. While a catch-up lasts (until `idle`, `end` or `close`), the
        process's young GC threshold is raised (younggc.py: the decoded pages would otherwise
        drive the collector)."""
        self.ahead = ahead
        if not self._holding:
            younggc.hold()
            self._holding = True

    def idle(self) -> None:
        """The reader is caught up (it is about to wait): the young GC threshold goes back."""
        if self._holding:
            self._holding = False
            younggc.release()

    async def _drop(self) -> bool:
        """Stop the read-ahead; True when a read was cut off (see _ReadAhead.close)."""
        assert self.ahead is not None
        ahead, self.ahead = self.ahead, None
        return await ahead.close()

    async def end(self) -> None:
        """The catch-up is over: its connections go too (a projector follows many projections;
        each would otherwise keep more connections open)."""
        try:
            await self._drop()
            await self.readers.close()
        finally:
            self.idle()

    async def close(self) -> None:
        try:
            if self.ahead is not None:
                await self._drop()
            await self.readers.close()
        finally:
            self.idle()


class _ReadAhead:
    """Runs one EventStore.pages_ahead into a small queue (it waits while the queue is full)."""

    def __init__(self, pages: AsyncIterator[RawPage]) -> None:
        self._queue: asyncio.Queue[RawPage | BaseException | None] = asyncio.Queue(maxsize=2)
        self._task = asyncio.create_task(self._run(pages))

    async def _run(self, pages: AsyncIterator[RawPage]) -> None:
        try:
            async for raw in pages:
                await self._queue.put(raw)
            await self._queue.put(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the reader raises it where it would have read the page
            await self._queue.put(exc)

    async def next(self) -> RawPage | None:
        """The next page, or None when the stream is over."""
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> bool:
        """Stop reading ahead; True when a read was cut off (its connection is best dropped)."""
        cut = not self._task.done()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        return cut


class _Readers:
    """The connections a subscription reads ahead on, opened when a catch-up starts."""

    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.count = count
        self._conns: list[AsyncConnection[Any]] = []

    async def open(self) -> list[AsyncConnection[Any]]:
        self._conns = [c for c in self._conns if not c.closed]
        while len(self._conns) < self.count:
            self._conns.append(await AsyncConnection.connect(self.url, autocommit=True))
        return list(self._conns)

    async def close(self) -> None:
        conns, self._conns = self._conns, []
        for conn in conns:
            await conn.close()
