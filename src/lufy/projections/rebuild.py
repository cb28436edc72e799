"""Rebuild a read model from the log into its shadow copy, then swap it in one transaction.

The shadow tables (schema `lufy_shadow`, created by `lufy migrate` from the same projections/
files) are filled by the projection's own `apply`, with the search_path pointing at them, in
batches committed together with the rebuild's place in the log (lufy.projection_rebuilds): an
interrupted rebuild resumes where it stopped. The shadow tables are UNLOGGED while they are
filled (no WAL for pages that rewrite the same index and TOAST pages again and again), without
the indexes only readers use (`RangeProjection.rebuild_deferred_indexes`), and made LOGGED, with
those indexes built, once the rebuild has caught up: their final contents go to the WAL once
(sql/0940_rebuild_unlogged_shadow.sql). A rebuild resuming after crash recovery emptied them
starts afresh. Then one transaction
- stops the live projector (it holds the live checkpoint row locked) or, for an inline
  projection, its writers (EXCLUSIVE lock on the live tables: readers are not blocked),
- applies the last events to the shadow copy, up to the live checkpoint (async) or to
  everything committed (inline),
- exchanges the live tables with the shadow copies (moved between the schemas by
  `lufy.swap_shadow_tables`: readers see the old model until commit; views are re-pointed,
  grants, policies, comments stay as they were; rebuild_swap.py), or, when a table cannot be
  exchanged, replaces the live rows with the shadow rows (DELETE + INSERT),
- records the version, moves the live checkpoint, and appends `operations.projection_rebuilt`.
With `until`, the shadow copy is built as of that time (a prefix of the log by recorded_at) and
left in `lufy_shadow` for inspection, without a swap.

A RangeProjection (one set-based statement per stretch of the log) is first built by a *first
pass*: the read barrier is fixed when the rebuild starts, and everything below it is applied by
ranges of log positions (`rebuild_step` per transaction), each a plain index range of the log
rather than a walk in (transaction_id, global_position) order; what was committed since is
then applied like any reader would, from the checkpoint (barrier, 0). A RangeProjection whose
rows depend on the order of events (`by_positions = False`, e.g. analytics) skips the first pass:
it is applied page by page in log order, `rebuild_step` events per transaction.

The pages catch-up reads are `rebuild_pages`; the swap (and the comparison with the live model)
is `rebuild_swap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from psycopg import AsyncConnection

from lufy.errors import LufyError
from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.postgres import EventStore
from lufy.logs import get_logger
from lufy.projections.applier import Batch, RebuildPlace, apply_batch
from lufy.projections.base import Projection
from lufy.projections.context import (
    NS_REBUILD,
    SHADOW_PATH,
    SHADOW_SCHEMA,
    Q,
    enter_system_transaction,
    process_label,
)
from lufy.projections.ranged import LogRange, RangeProjection
from lufy.projections.reactors import Reactor
from lufy.projections.rebuild_pages import PageReader
from lufy.projections.rebuild_swap import ShadowSwap
from lufy.sqlfiles import load_queries

__all__ = ["RebuildError", "RebuildResult", "rebuild"]

_R = load_queries("lufy.projections", "rebuild.sql")

_log = get_logger(__name__)
DEFAULT_BATCH_SIZE = 5000


class _FirstPass(NamedTuple):
    below: int  # the read barrier when the rebuild started (a transaction id)
    end: int  # the last position then
    done: int  # positions up to here are applied


class _Place(NamedTuple):
    checkpoint: Checkpoint
    applied: int
    resumed: bool
    first_pass: _FirstPass | None


class RebuildError(LufyError):
    status = 409
    title = "Rebuild refused"


@dataclass
class RebuildResult:
    name: str
    version: int
    events_applied: int
    resumed: bool
    swapped: bool
    checkpoint: Checkpoint
    seconds: float
    # table -> (rows only in the live model, rows only in the rebuilt one), compared just before
    # the swap at the same position in the log; empty unless `compare=True`.
    differences: dict[str, tuple[int, int]] = field(default_factory=dict)


Progress = Callable[[int, int], None]  # (events applied so far, events to apply in total)


async def rebuild(
    url: str,
    projection: Projection,
    *,
    store: EventStore | None = None,
    until: datetime | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    compare: bool = False,
    swap: bool = True,
) -> RebuildResult:
    """Rebuild `projection` (resuming an interrupted rebuild of the same version and `until`).

    `batch_size` is events per transaction (default 5000, or for a RangeProjection read in log
    order its `rebuild_step`), or for a RangeProjection's first pass log positions per
    transaction (default: its `rebuild_step`).
    """
    if isinstance(projection, Reactor) or not projection.tables:
        raise RebuildError(f"{projection.name} has no tables to rebuild (reactors replay nothing)")
    store = store or EventStore()
    started = time.monotonic()
    lock = await AsyncConnection.connect(
        url, autocommit=True, application_name=process_label("rebuild")
    )
    async with lock:
        cur = await lock.execute(Q.try_lead, {"ns": NS_REBUILD, "name": projection.name})
        row = await cur.fetchone()
        if not (row and row[0]):
            raise RebuildError(f"a rebuild of {projection.name} is already running")
        conn = await AsyncConnection.connect(
            url, autocommit=True, application_name=process_label("rebuild")
        )
        async with conn:
            await conn.execute(_R.session_settings)
            return await _Rebuild(
                url, conn, store, projection, until, batch_size, progress, started
            ).run(compare=compare, swap=swap and until is None)


class _Rebuild:
    def __init__(
        self,
        url: str,
        conn: AsyncConnection[Any],
        store: EventStore,
        projection: Projection,
        until: datetime | None,
        batch_size: int | None,
        progress: Progress | None,
        started: float,
    ) -> None:
        self.url = url
        self.conn = conn
        self.store = store
        self.p = projection
        self.name = projection.name
        self.types = sorted(projection.handles)
        self.until = until
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        # A RangeProjection read in log order only (no first pass) takes pages of its
        # rebuild_step events.
        self.batch_size = batch_size or (
            projection.rebuild_step
            if isinstance(projection, RangeProjection) and not projection.by_positions
            else DEFAULT_BATCH_SIZE
        )
        self.first_pass_step = batch_size or (
            projection.rebuild_step if isinstance(projection, RangeProjection) else 1
        )
        if self.first_pass_step < 1:
            raise ValueError(f"{projection.name}: rebuild_step must be at least 1")
        self.progress = progress
        self.started = started
        self.pages = PageReader(store, projection, self.batch_size, until, self.types)
        self.swapper = ShadowSwap(conn, store, projection, self.batch_size, self.types)

    async def run(self, *, compare: bool, swap: bool) -> RebuildResult:
        await self._check_shadow()
        place = await self._start()
        checkpoint, applied = place.checkpoint, place.applied
        if not self.p.inline:
            await self.conn.execute(Q.mark_rebuilding, {"name": self.name})
        try:
            if place.first_pass is not None:
                checkpoint, applied = await self._first_pass(place.first_pass)
            checkpoint, applied = await self._catch_up(checkpoint, applied)
            result = RebuildResult(
                name=self.name,
                version=self.p.version,
                events_applied=applied,
                resumed=place.resumed,
                swapped=False,
                checkpoint=checkpoint,
                seconds=0.0,
            )
            await self.swapper.persist_shadow(self.url)
            if swap:
                swapped = await self.swapper.swap(checkpoint, applied, compare=compare)
                result.differences = swapped.differences
                result.events_applied += swapped.extra
                result.checkpoint = swapped.final
                result.swapped = True
                await self.swapper.clear_shadow()
            elif compare:
                result.differences = await self.swapper.differences()
        finally:
            if not self.p.inline:
                await self.conn.execute(_R.end_rebuilding, [self.name])
        result.seconds = time.monotonic() - self.started
        _log.info(
            "rebuild finished",
            projection=self.name,
            events=result.events_applied,
            swapped=result.swapped,
            seconds=round(result.seconds, 2),
        )
        return result

    # --- preparation --------------------------------------------------------------------------

    async def _check_shadow(self) -> None:
        for table in self.p.tables:
            cur = await self.conn.execute(Q.shadow_exists, {"table": f"{SHADOW_SCHEMA}.{table}"})
            row = await cur.fetchone()
            if not (row and row[0]):
                raise RebuildError(
                    f"{self.name}: no shadow table {SHADOW_SCHEMA}.{table} (run `lufy migrate`; "
                    "its projections/ file must create the table with an unqualified name)"
                )

    async def _start(self) -> _Place:
        """Resume the rebuild of this version and `until`, or start afresh on empty tables."""
        first_pass = (
            isinstance(self.p, RangeProjection) and self.p.by_positions and self.until is None
        )
        bounds: tuple[int, int | None] | None = None
        if first_pass:
            # Read before the start's transaction, each in a transaction of its own (the
            # connection is in autocommit), in this order: every transaction below the barrier
            # has finished before the last position's snapshot, so all their events are at or
            # below it, whatever the default isolation level. Reading them early is safe: the
            # first pass then covers a little less, and catch-up the rest.
            cur = await self.conn.execute(Q.barrier_now)
            below = int((await cur.fetchone() or (0,))[0])
            cur = await self.conn.execute(Q.last_position)
            end_row = await cur.fetchone()
            bounds = (below, None if end_row is None or end_row[0] is None else int(end_row[0]))
        async with self.conn.transaction():
            cur = await self.conn.execute(Q.get_rebuild, {"name": self.name})
            row = await cur.fetchone()
            if (
                row is not None
                and int(row[0]) == self.p.version
                and row[1] == self.until
                and not await self._shadow_lost(applied=int(row[4]) or int(row[3]))
            ):
                if row[5] is None:
                    _log.info("resuming rebuild", projection=self.name, position=int(row[3]))
                    return _Place(Checkpoint(int(row[2]), int(row[3])), int(row[4]), True, None)
                if first_pass:  # (a projection that is no longer ranged starts afresh)
                    _log.info("resuming first pass", projection=self.name, position=int(row[3]))
                    first = _FirstPass(below=int(row[5]), end=int(row[6]), done=int(row[3]))
                    return _Place(Checkpoint.START, 0, True, first)
            await enter_system_transaction(self.conn, SHADOW_PATH)
            await self.conn.execute(_R.truncate_shadow, {"tables": list(self.p.tables)})
            # Filled without WAL; made LOGGED again once caught up (ShadowSwap.persist_shadow).
            await self.conn.execute(
                _R.set_shadow_logged, {"tables": list(self.p.tables), "logged": False}
            )
            if isinstance(self.p, RangeProjection) and self.p.rebuild_deferred_indexes:
                await self.conn.execute(
                    _R.drop_deferred_indexes,
                    {
                        "tables": list(self.p.tables),
                        "names": list(self.p.rebuild_deferred_indexes),
                    },
                )
            await self.conn.execute(
                Q.start_rebuild,
                {"name": self.name, "version": self.p.version, "until": self.until},
            )
            if bounds is None or bounds[1] is None:  # not ranged, or an empty log
                return _Place(Checkpoint.START, 0, False, None)
            first = _FirstPass(below=bounds[0], end=bounds[1], done=0)
            # In the start's transaction: an interruption from here on resumes the first pass.
            await self.conn.execute(
                Q.begin_first_pass, {"name": self.name, "below": first.below, "end": first.end}
            )
            return _Place(Checkpoint.START, 0, False, first)

    async def _shadow_lost(self, *, applied: int) -> bool:
        """Whether the shadow copies of a rebuild that applied something were emptied by crash
        recovery (they are UNLOGGED while a rebuild fills them): it then starts afresh."""
        if not applied:
            return False
        cur = await self.conn.execute(_R.shadow_lost, {"tables": list(self.p.tables)})
        lost = bool((await cur.fetchone() or (False,))[0])
        if lost:
            _log.warning("rebuild.shadow_lost", projection=self.name, applied=applied)
        return lost

    async def _count_apart(self, query: Any, params: dict[str, Any]) -> int:
        """A count of events for the progress, on a connection of its own while the rebuild
        applies (one worker: the other core is the apply's)."""
        async with (
            await AsyncConnection.connect(
                self.url, autocommit=True, application_name=process_label("rebuild")
            ) as counter,
            counter.transaction(),
        ):
            await counter.execute(_R.one_worker)
            cur = await counter.execute(query, params)
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # --- building -----------------------------------------------------------------------------

    async def _first_pass(self, first: _FirstPass) -> tuple[Checkpoint, int]:
        """Apply everything below the barrier by ranges of positions; returns (barrier, 0).

        How many events that is gets counted on a second connection meanwhile (the apply runs
        in one backend, so the count takes the other core): progress shows positions covered
        until it is known, and the count becomes `events_applied` when the pass ends.
        """
        assert isinstance(self.p, RangeProjection)
        step = self.first_pass_step
        counter = asyncio.create_task(self._count_first_pass(first.below))
        try:
            pos = first.done
            while True:
                nxt = min(pos + step, first.end)
                last = nxt >= first.end
                counted = await counter if last else 0
                async with self.conn.transaction():
                    await enter_system_transaction(self.conn, SHADOW_PATH)
                    if nxt > pos:
                        await self.p.apply_range(
                            self.conn, LogRange.positions(pos, nxt, first.below)
                        )
                    if last:
                        await self.conn.execute(
                            Q.end_first_pass, {"name": self.name, "applied": counted}
                        )
                    else:
                        await self.conn.execute(
                            Q.advance_first_pass, {"name": self.name, "pos": nxt}
                        )
                pos = nxt
                if last:
                    if self.progress:
                        self.progress(counted, counted)
                    return Checkpoint(first.below, 0), counted
                if self.progress:
                    total = counter.result() if counter.done() else first.end
                    self.progress(round(total * pos / first.end), total)
        finally:
            if not counter.done():
                counter.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await counter

    async def _count_first_pass(self, below: int) -> int:
        return await self._count_apart(Q.count_first_pass, {"below": below, "types": self.types})

    async def _catch_up(self, checkpoint: Checkpoint, applied: int) -> tuple[Checkpoint, int]:
        """Apply batches until a page comes back short: the swap then has little left to do.

        The next page is read on a second connection while the current one is applied, so the
        database's part of reading overlaps with decoding and applying. How many events there
        are to apply (for the progress, reported from the first batch applied on) is counted
        on a third one meanwhile: counting them first delayed the first page (about 0.5 s
        for the 3,030,000 events of the analytics fixture).
        """
        before = applied
        counter = asyncio.create_task(
            self._count_apart(
                Q.count_after,
                {
                    "tx": checkpoint.transaction_id,
                    "pos": checkpoint.global_position,
                    "types": self.types,
                },
            )
        )
        try:
            return await self._apply_pages(checkpoint, applied, before, counter)
        finally:
            if not counter.done():
                counter.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await counter

    async def _apply_pages(
        self, checkpoint: Checkpoint, applied: int, before: int, counter: asyncio.Task[int]
    ) -> tuple[Checkpoint, int]:
        async with contextlib.aclosing(self.pages.read_ahead(self.url, checkpoint)) as pages:
            async for page, full in pages:
                batch, done = page, not full
                if self.until is not None and batch.events:
                    kept = [e for e in batch.events if e.recorded_at <= self.until]
                    if len(kept) < len(batch.events):
                        after = kept[-1].checkpoint if kept else checkpoint
                        batch, done = Batch(checkpoint, after, kept), True
                if batch.size or batch.after != checkpoint:
                    await apply_batch(
                        self.conn,
                        [self.p],
                        batch,
                        cursor=RebuildPlace(self.name),
                        search_path=SHADOW_PATH,
                    )
                    applied += batch.size
                    checkpoint = batch.after
                    if self.progress:
                        self.progress(applied, max(before + await counter, applied))
                if done:
                    break
        return checkpoint, applied


def until_from_text(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("--until needs a time zone (e.g. 2026-01-31T00:00:00Z)")
    return value
