"""Pages of a catch-up built on several connections at once.

The server takes several times longer to build a page of the log (one JSON object per event,
read_page) than the reader to decode it, so a reader that is catching up waits on one backend.
Below a barrier an earlier page returned, the set of events is final (architecture.md, "Reading
without gaps"): `page_bounds` (queries.sql) reads where the next pages end from the index, and
the pages between those keys are asked for on every connection at once and handed out in log
order. Each such page holds exactly the events between two known keys, so the pages are the
ones a single connection would have read one after the other. A catch-up's read-ahead goes on
to the barrier: the next keys are read on a connection that comes free while the last pages
of the ones before are built (before, a read-ahead stopped after 20 pages, and the reader read
a page alone and opened new connections for the next one; going on read 4-17 % more events per
second at load 3-9: docs/benchmarks.md, "Catch-up over COPY").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Collection, Sequence
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.reading import RawPage, page_params
from lufy.sqlfiles import load_queries

if TYPE_CHECKING:
    from lufy.eventstore.postgres import EventStore

__all__ = ["parallel_pages"]

_Q = load_queries("lufy.eventstore")

_Range = tuple[Checkpoint, Checkpoint | None]  # a page: after, upto (None: to the barrier)


async def parallel_pages(
    store: EventStore,
    conns: Sequence[AsyncConnection[Any]],
    after: Checkpoint,
    *,
    limit: int,
    pages: int,
    barrier: int,
    types: Collection[str] | None,
    to_barrier: bool = False,
) -> AsyncIterator[RawPage]:
    """EventStore.pages_ahead on several connections: the same pages, in the same order.

    With `to_barrier`, a catch-up's read-ahead (Subscription): every page after `after` below
    `barrier`, ending with the short page that says all of them were read. Where the pages end
    is read `pages` at a time, the next of those reads on a free connection while the last
    pages of the one before are built, so the reader does not wait for it."""
    params = page_params(after, limit, types) | {"pages": pages, "barrier": barrier}
    reader = _Pages(store, conns, params, endless=to_barrier)
    async for raw in reader.run(after):
        yield raw


class _Pages:
    """The pages between keys page_bounds reads, fetched on every free connection, yielded in
    log order (see the module docstring)."""

    def __init__(
        self,
        store: EventStore,
        conns: Sequence[AsyncConnection[Any]],
        params: dict[str, Any],
        *,
        endless: bool,
    ) -> None:
        """`params`: page_bounds' (read_page's, with `pages` and `barrier`)."""
        self.store, self.conns, self.params, self.endless = store, conns, params, endless
        self.limit, self.types, self.pages = params["limit"], params["types"], params["pages"]
        self.barrier = params["barrier"]
        self.ranges: deque[_Range] = deque()  # known, not asked for yet
        self.more: Checkpoint | None = None  # where the keys not read yet start, if any

    async def _bounds(self, conn: AsyncConnection[Any], start: Checkpoint) -> list[Checkpoint]:
        params = self.params | {"tx": start.transaction_id, "pos": start.global_position}
        cur = await conn.execute(_Q.page_bounds, params, prepare=True, binary=True)
        return [Checkpoint(int(tx), int(pos)) for tx, pos in await cur.fetchall()]

    def _add(self, start: Checkpoint, bounds: list[Checkpoint]) -> None:
        """The pages up to `bounds` after `start`; when the events below the barrier end first,
        a last page with no upper bound comes back short, as it would have on one connection."""
        for bound in bounds:
            self.ranges.append((start, bound))
            start = bound
        if len(bounds) < self.pages:
            self.ranges.append((start, None))
            self.more = None
        else:
            self.more = start if self.endless else None

    async def run(self, after: Checkpoint) -> AsyncIterator[RawPage]:
        self._add(after, await self._bounds(self.conns[0], after))
        free = deque(self.conns)
        running: deque[tuple[asyncio.Task[RawPage], AsyncConnection[Any], Checkpoint | None]]
        running = deque()
        bounding: tuple[asyncio.Task[list[Checkpoint]], AsyncConnection[Any], Checkpoint] | None
        bounding = None
        try:
            while self.ranges or running or bounding or self.more is not None:
                if self.more is not None and bounding is None and free and len(self.ranges) <= 1:
                    conn = free.popleft()
                    start, self.more = self.more, None
                    bounding = (asyncio.ensure_future(self._bounds(conn, start)), conn, start)
                while self.ranges and free:
                    page_after, upto = self.ranges.popleft()
                    conn = free.popleft()
                    task = asyncio.ensure_future(
                        self.store.fetch_page(
                            conn,
                            page_after,
                            limit=self.limit,
                            types=self.types,
                            barrier=self.barrier,
                            upto=upto,
                        )
                    )
                    running.append((task, conn, upto))
                if bounding is not None and (not running or bounding[0].done()):
                    bounds_task, conn, start = bounding
                    bounds = await bounds_task
                    bounding = None
                    free.append(conn)
                    self._add(start, bounds)
                    continue
                task, conn, upto = running.popleft()
                raw = await task
                free.append(conn)
                if upto is not None and (not raw.full or raw.last != upto):
                    return  # cannot happen below a barrier; the reader reads on from its checkpoint
                yield raw
        finally:
            # Cut off: cancel what is in flight (the reader drops these connections, see
            # Subscription); asyncio.wait raises nothing of the tasks' own.
            tasks: list[asyncio.Future[Any]] = [task for task, _, _ in running]
            if bounding is not None:
                tasks.append(bounding[0])
            for pending in tasks:
                pending.cancel()
            if tasks:
                await asyncio.wait(tasks)
