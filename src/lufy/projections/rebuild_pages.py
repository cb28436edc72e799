"""The pages a rebuild's catch-up reads from the log (a second connection reads ahead).

Each page is read on a connection of its own while the previous one is applied. A plain
projection gets pages of decoded events (EventStore.read_all); a RangeProjection only
where each page ends and how many events it holds, since it applies a range in one statement.
With `until`, a page ends at the last event recorded by then.

A RangeProjection with `rebuild_stage_slots` also has each page prepared on the reading
connection (`stage_range`: the analytics projection types the page's events there), in slots
used in turn: the applying connection, on the other core, then skips that part. A slot takes a
page once the page it held before is applied (`_Slots`), and the slots are cleared at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.postgres import EventStore
from lufy.projections.applier import Batch
from lufy.projections.base import Projection
from lufy.projections.context import Q, process_label
from lufy.projections.ranged import LogRange, RangeProjection
from lufy.sqlfiles import load_queries

__all__ = ["PageReader"]

_R = load_queries("lufy.projections", "rebuild.sql")


@dataclass(frozen=True)
class PageReader:
    store: EventStore
    p: Projection
    batch_size: int
    until: datetime | None
    types: list[str]

    async def read_ahead(
        self, url: str, after: Checkpoint
    ) -> AsyncGenerator[tuple[Batch, bool], None]:
        """The pages after `after` (each with whether it is full) up to the first short one, the
        next read on a connection of its own while the caller applies the current one."""
        pages: asyncio.Queue[tuple[Batch, bool] | BaseException] = asyncio.Queue(maxsize=2)
        slots = (
            _Slots(self.p, asyncio.Semaphore(self.p.rebuild_stage_slots))
            if isinstance(self.p, RangeProjection)
            and self.p.rebuild_stage_slots
            and self.until is None
            else None
        )

        async def produce(reader: AsyncConnection[Any], after: Checkpoint) -> None:
            try:
                while True:
                    batch, full = await self.read(reader, after)
                    if slots is not None and batch.size:
                        batch = await slots.stage(reader, batch)
                    await pages.put((batch, full))
                    if not full:
                        return
                    after = batch.after
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # hand it to the consumer, which raises it
                await pages.put(exc)

        reader = await AsyncConnection.connect(
            url, autocommit=True, application_name=process_label("rebuild")
        )
        async with reader:
            producer = asyncio.create_task(produce(reader, after))
            try:
                while True:
                    item = await pages.get()
                    if isinstance(item, BaseException):
                        raise item
                    yield item
                    if slots is not None and item[0].staged is not None:
                        slots.free.release()  # (the caller applied it)
                    if not item[1]:
                        return
            finally:
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer
                if slots is not None:
                    await slots.clear(reader)

    async def read(self, reader: AsyncConnection[Any], after: Checkpoint) -> tuple[Batch, bool]:
        """The next batch after `after` and whether it is full: one page of
        EventStore.read_all (decoded in one call per page), or for a RangeProjection only
        where it ends and how many events it holds."""
        if isinstance(self.p, RangeProjection):
            return await self._read_positions(reader, after)
        page = await self.store.read_all(reader, after, limit=self.batch_size, types=self.types)
        return Batch(after, page.checkpoint, page.events), len(page.events) >= self.batch_size

    async def _read_positions(
        self, reader: AsyncConnection[Any], after: Checkpoint
    ) -> tuple[Batch, bool]:
        if self.until is None:
            return await self._read_boundary(reader, after)
        cur = await reader.execute(
            Q.read_positions,
            {
                "tx": after.transaction_id,
                "pos": after.global_position,
                "limit": self.batch_size,
                "types": self.types,
            },
            prepare=True,
        )
        rows = await cur.fetchall()
        found = [r for r in rows if r[0] is not None]
        kept = [r for r in found if self.until is None or r[2] <= self.until]
        if len(kept) < len(found):  # the batch ends at the last event recorded by `until`
            end = Checkpoint(int(kept[-1][0]), int(kept[-1][1])) if kept else after
            return Batch(after, end, count=len(kept)), False
        if len(found) >= self.batch_size:
            last = found[-1]
            return Batch(after, Checkpoint(int(last[0]), int(last[1])), count=len(found)), True
        return Batch(after, max(after, Checkpoint(int(rows[0][3]), 0)), count=len(found)), False

    async def _read_boundary(
        self, reader: AsyncConnection[Any], after: Checkpoint
    ) -> tuple[Batch, bool]:
        """Only the end of the page and how many events it holds: nothing else is needed to
        apply a range, and shipping 100k rows to Python would cost more than applying them."""
        params: dict[str, Any] = {
            "tx": after.transaction_id,
            "pos": after.global_position,
            "offset": self.batch_size - 1,
            "types": self.types,
        }
        async with reader.transaction():
            # A row-comparison bound is badly estimated; with OFFSET the planner then prefers
            # reading the whole log and sorting it to walking the index a page further.
            await reader.execute(_R.no_sort)
            cur = await reader.execute(Q.read_boundary, params, prepare=True)
            row = await cur.fetchone()
        assert row is not None
        if row[0] is not None:
            end = Checkpoint(int(row[0]), int(row[1]))
            return Batch(after, end, count=self.batch_size), True
        barrier = int(row[2])
        cur = await reader.execute(Q.count_below, {**params, "barrier": barrier})
        counted = await cur.fetchone()
        n = int(counted[0]) if counted else 0
        return Batch(after, max(after, Checkpoint(barrier, 0)), count=n), False


@dataclass
class _Slots:
    """The slots a RangeProjection prepares pages ahead in (`rebuild_stage_slots`), used in
    turn: page k goes to slot k % slots once every page before k - slots + 1 is applied (one
    permit of `free` per slot, released as each staged page is applied, in order), so the page
    a slot held is applied before the slot takes the next. The first page is not prepared:
    the applying connection applies it whole while the reading connection prepares the second,
    instead of waiting for it (about 0.7 s for the analytics projection)."""

    p: RangeProjection
    free: asyncio.Semaphore
    pages: int = 0  # pages seen; every one but the first is prepared

    async def stage(self, reader: AsyncConnection[Any], batch: Batch) -> Batch:
        self.pages += 1
        if self.pages == 1:
            return batch
        await self.free.acquire()
        slot = (self.pages - 2) % self.p.rebuild_stage_slots
        await self.p.stage_range(reader, LogRange.between(batch.before, batch.after), slot)
        return dataclasses.replace(batch, staged=slot)

    async def clear(self, reader: AsyncConnection[Any]) -> None:
        """Empty the slots once the pages are applied (or the rebuild stopped)."""
        if self.pages > 1:
            with contextlib.suppress(Exception):  # (the next rebuild clears each slot anyway)
                await self.p.clear_stage(reader)
