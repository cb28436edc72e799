"""Pages of a catch-up built on several connections at once.

The server takes several times longer to build a page of the log (one JSON object per event,
read_page) than the reader to decode it, so a reader that is catching up waits on one backend.
Below a barrier an earlier page returned, the set of events is final (architecture.md, "Reading
without gaps"): `page_bounds` (queries.sql) reads where the next pages end from the index, and
the pages between those keys are asked for on every connection at once and handed out in log
order. Each such page holds exactly the events between two known keys, so the pages are the
ones a single connection would have read one after the other.
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


async def parallel_pages(
    store: EventStore,
    conns: Sequence[AsyncConnection[Any]],
    after: Checkpoint,
    *,
    limit: int,
    pages: int,
    barrier: int,
    types: Collection[str] | None,
) -> AsyncIterator[RawPage]:
    """EventStore.pages_ahead on several connections: the same pages, in the same order."""
    params = page_params(after, limit, types) | {"pages": pages, "barrier": barrier}
    cur = await conns[0].execute(_Q.page_bounds, params, prepare=True, binary=True)
    bounds = [Checkpoint(int(tx), int(pos)) for tx, pos in await cur.fetchall()]
    # (after, upto) of every page; when the events below the barrier end first, a last page
    # with no upper bound comes back short, as it would have on one connection.
    ranges: list[tuple[Checkpoint, Checkpoint | None]] = []
    start = after
    for bound in bounds:
        ranges.append((start, bound))
        start = bound
    if len(bounds) < pages:
        ranges.append((start, None))
    free = deque(conns)
    running: deque[tuple[asyncio.Task[RawPage], AsyncConnection[Any], Checkpoint | None]] = deque()
    queue = deque(ranges)
    try:
        while queue or running:
            while queue and free:
                page_after, upto = queue.popleft()
                conn = free.popleft()
                task = asyncio.ensure_future(
                    store.fetch_page(
                        conn, page_after, limit=limit, types=types, barrier=barrier, upto=upto
                    )
                )
                running.append((task, conn, upto))
            task, conn, upto = running.popleft()
            raw = await task
            free.append(conn)
            if upto is not None and (not raw.full or raw.last != upto):
                return  # cannot happen below a barrier; the reader reads on from its checkpoint
            yield raw
    finally:
        # Cut off: cancel what is in flight (the reader drops these connections, see
        # Subscription); asyncio.wait raises nothing of the tasks' own.
        tasks = [task for task, _, _ in running]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
