"""The log-applier: the one way a stretch of the log is applied to projections.

A *batch* is a stretch of the log read gap-free by its caller: everything of the readers' types
after checkpoint `before` up to checkpoint `after`, either as decoded events or, for a
RangeProjection, only counted (its `apply_range` reads the stretch itself). Applying it is

- `apply_events`: in the caller's transaction, each projection gets the events of its types (a
  reactor records its jobs, returned to be enqueued after commit). `append_inline` calls this in
  the writer's transaction; `apply_within` is the same for a batch of either shape (a counted
  one goes to `apply_range`), for a caller with its own transaction open (a rebuild's swap);
- `apply_batch`: one transaction as role `system` with the search_path given (live tables, or
  the shadow copies of a rebuild), the batch applied there, and the reader's place in the log
  (a `Cursor`) checked and advanced in that same transaction, so the read model and the place
  commit or roll back together and a replay applies nothing twice. The projector's live
  processing and the tests' `LocalProjector` call this.

Reading the log (the `Subscription`, `EventStore.read_all`) and what to do when a batch fails
(retries, isolating the failing event, `failed` state) are the callers'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint, RecordedEvent
from lufy.jobs.broker import QueuedJob
from lufy.projections.base import Projection
from lufy.projections.context import LIVE_PATH, Q, checkpoint_of, enter_system_transaction
from lufy.projections.ranged import LogRange, RangeProjection
from lufy.projections.reactors import Reactor

__all__ = [
    "Batch",
    "Cursor",
    "LiveCheckpoint",
    "Moved",
    "RebuildPlace",
    "apply_batch",
    "apply_events",
    "apply_within",
]


@dataclass(frozen=True, slots=True)
class Batch:
    """Everything of the readers' types after `before`, up to and including `after`.

    `events` are the decoded events; a batch read without decoding (for RangeProjections) has
    none and says how many events it holds in `count`.
    """

    before: Checkpoint
    after: Checkpoint
    events: Sequence[RecordedEvent] = ()
    count: int | None = None
    # A rebuild's page prepared ahead in this slot (`RangeProjection.stage_range`).
    staged: int | None = None

    @property
    def size(self) -> int:
        return len(self.events) if self.count is None else self.count


class Moved(Exception):
    """The reader's place is not where the batch starts: a skip, a swap, or another leader."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        super().__init__(f"checkpoint moved to {checkpoint}")
        self.checkpoint = checkpoint


class Cursor(Protocol):
    """A reader's place in the log, kept in the database and moved with what it applies."""

    async def check(self, conn: AsyncConnection[Any], before: Checkpoint) -> None:
        """Inside the batch's transaction, first: raise Moved unless the place is `before`."""

    async def advance(self, conn: AsyncConnection[Any], batch: Batch) -> None:
        """Inside the batch's transaction, last: move the place to `batch.after`."""


@dataclass(frozen=True, slots=True)
class LiveCheckpoint:
    """A live reader's row in lufy.checkpoints, locked FOR UPDATE and compared before applying
    (two leaders never apply a batch twice). With `clears_failure`, a batch of events also sets
    the projection's state back to running (a failed projection that got past its event)."""

    name: str
    clears_failure: bool = False

    async def check(self, conn: AsyncConnection[Any], before: Checkpoint) -> None:
        cur = await conn.execute(Q.lock_checkpoint, {"name": self.name}, prepare=True)
        current = checkpoint_of(await cur.fetchone())
        if current != before:
            raise Moved(current)

    async def advance(self, conn: AsyncConnection[Any], batch: Batch) -> None:
        after = batch.after
        await conn.execute(
            Q.set_checkpoint,
            {"name": self.name, "tx": after.transaction_id, "pos": after.global_position},
            prepare=True,
        )
        if self.clears_failure and batch.size:
            await conn.execute(Q.mark_running, {"name": self.name})


@dataclass(frozen=True, slots=True)
class RebuildPlace:
    """A rebuild's place in lufy.projection_rebuilds (with its count of events applied). The
    rebuild holds its projection's rebuild lock, so there is nothing to compare."""

    name: str

    async def check(self, conn: AsyncConnection[Any], before: Checkpoint) -> None:
        return None

    async def advance(self, conn: AsyncConnection[Any], batch: Batch) -> None:
        after = batch.after
        await conn.execute(
            Q.advance_rebuild,
            {
                "name": self.name,
                "tx": after.transaction_id,
                "pos": after.global_position,
                "applied": batch.size,
            },
        )


async def apply_events(
    conn: AsyncConnection[Any],
    projections: Sequence[Projection],
    events: Sequence[RecordedEvent],
) -> list[QueuedJob]:
    """In the caller's transaction: each projection gets the events of its types, in order.

    Returns the jobs the reactors among them recorded (new to the ledger), to enqueue after
    commit.
    """
    jobs: list[QueuedJob] = []
    for projection in projections:
        mine = [e for e in events if e.type in projection.handles]
        if not mine:
            continue
        if isinstance(projection, Reactor):
            jobs.extend(await projection.record(conn, mine))
        else:
            await projection.apply(conn, mine)
    return jobs


async def apply_within(
    conn: AsyncConnection[Any], projections: Sequence[Projection], batch: Batch
) -> list[QueuedJob]:
    """In the caller's transaction: a batch of decoded events through `apply_events`, a counted
    one through each projection's `apply_range` over (before, after] (RangeProjections only).
    Returns the reactors' jobs to enqueue after commit."""
    if batch.events:
        return await apply_events(conn, projections, batch.events)
    if batch.size:
        for projection in projections:
            if not isinstance(projection, RangeProjection):
                raise TypeError(
                    f"{projection.name}: a batch without events needs a RangeProjection"
                )
            await projection.apply_range(
                conn, LogRange.between(batch.before, batch.after, staged=batch.staged)
            )
    return []


async def apply_batch(
    conn: AsyncConnection[Any],
    projections: Sequence[Projection],
    batch: Batch,
    *,
    cursor: Cursor | None,
    search_path: str = LIVE_PATH,
) -> list[QueuedJob]:
    """Apply `batch` and advance `cursor` in one transaction on `conn` (autocommit), as role
    `system` with `search_path`; returns the reactors' jobs to enqueue once it has committed.

    Raises Moved (nothing applied) when the cursor is not at `batch.before`. Without a cursor
    the caller keeps the place itself, and must move it only once this returns.
    """
    async with conn.transaction():
        await enter_system_transaction(conn, search_path)
        if cursor is not None:
            await cursor.check(conn, batch.before)
        jobs = await apply_within(conn, projections, batch)
        if cursor is not None:
            await cursor.advance(conn, batch)
    return jobs
