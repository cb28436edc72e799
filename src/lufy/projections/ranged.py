"""Projections that apply a stretch of the log with one set-based statement.

A rollup over millions of events need not ship each event to Python: `apply_range` runs one
`INSERT … SELECT … FROM lufy.events WHERE <range> AND type = ANY(…) GROUP BY … ON CONFLICT …`,
where `<range>` is `log.where()` and the parameters are `log.params(self)`:

    async def apply_range(self, conn, log):
        await conn.execute(
            f"INSERT INTO plays_per_hour (track, hour, plays) SELECT data->>'track', "
            f"date_trunc('hour', occurred_at), count(*) FROM lufy.events "
            f"WHERE {log.where()} AND type = ANY(%(types)s) GROUP BY 1, 2 "
            "ON CONFLICT (track, hour) DO UPDATE SET plays = plays_per_hour.plays + excluded.plays",
            log.params(self),
        )

A range is one of two shapes, and the statement must work for both (it does when it only puts
`log.where()` in its WHERE clause):
- live processing and the end of a rebuild hand it the range of a batch the runner read:
  after < (transaction_id, global_position) <= upto, every transaction in it finished;
- a rebuild's first pass (unless the projection sets `by_positions = False`) hands it ranges
  of positions below a read barrier fixed when the pass started (all transactions below it
  finished): from_position < global_position <= to_position and transaction_id < below.
  Such a range is a plain index range (or a sequential read), which is what lets a rebuild
  run nearly as fast as one `INSERT … SELECT` over the whole log.

`where()` is constant SQL text (no values in it), so formatting it into the statement is safe.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint, RecordedEvent
from lufy.projections.base import Projection

__all__ = ["LogRange", "RangeProjection"]


@dataclass(frozen=True, slots=True)
class LogRange:
    """A stretch of the log: between two checkpoints, or a range of positions below a barrier."""

    after: Checkpoint | None = None
    upto: Checkpoint | None = None
    from_position: int = 0
    to_position: int = 0
    below: int = 0  # a transaction id: only transactions below it (positions shape)
    # A rebuild's page prepared ahead by `RangeProjection.stage_range` into this slot (None:
    # nothing prepared, the range is read from the log).
    staged: int | None = None

    @classmethod
    def between(cls, after: Checkpoint, upto: Checkpoint, *, staged: int | None = None) -> LogRange:
        """Events with after < (transaction_id, global_position) <= upto."""
        return cls(after=after, upto=upto, staged=staged)

    @classmethod
    def positions(cls, from_position: int, to_position: int, below: int) -> LogRange:
        """Events with from_position < global_position <= to_position and transaction_id < below."""
        return cls(from_position=from_position, to_position=to_position, below=below)

    @property
    def by_checkpoints(self) -> bool:
        return self.after is not None

    def where(self, alias: str = "") -> str:
        """The range as an SQL condition on lufy.events (`alias` when the statement names it)."""
        p = f"{alias}." if alias else ""
        if self.by_checkpoints:
            return (
                f"({p}transaction_id, {p}global_position) > "
                "(%(range_after_tx)s::text::xid8, %(range_after_pos)s) AND "
                f"({p}transaction_id, {p}global_position) <= "
                "(%(range_upto_tx)s::text::xid8, %(range_upto_pos)s)"
            )
        return (
            f"{p}global_position > %(range_from_pos)s AND {p}global_position <= %(range_to_pos)s"
            f" AND {p}transaction_id < %(range_below_tx)s::text::xid8"
        )

    def params(self, projection: Projection | None = None) -> dict[str, Any]:
        """The parameters `where()` names, plus `types` (the projection's handled types)."""
        out: dict[str, Any] = {}
        if projection is not None:
            out["types"] = sorted(projection.handles)
        if self.after is not None and self.upto is not None:
            out["range_after_tx"] = self.after.transaction_id
            out["range_after_pos"] = self.after.global_position
            out["range_upto_tx"] = self.upto.transaction_id
            out["range_upto_pos"] = self.upto.global_position
        else:
            out["range_from_pos"] = self.from_position
            out["range_to_pos"] = self.to_position
            out["range_below_tx"] = self.below
        return out


class RangeProjection(Projection):
    inline: ClassVar[bool] = False
    # Log positions per transaction in a rebuild's first pass (when `rebuild` is not given a
    # batch size): big enough that per-statement costs vanish, small enough to resume cheaply.
    rebuild_step: ClassVar[int] = 250_000
    # Whether a rebuild may apply what lies below its read barrier by ranges of log positions
    # (a first pass, see rebuild.py), which are not in log order across ranges. A projection
    # whose rows depend on the order of events (the first session to claim a grant, the first
    # value given) says False: its rebuild then reads pages of `rebuild_step` events in log
    # order, (transaction_id, global_position), as live processing does.
    by_positions: ClassVar[bool] = True
    # Indexes of its tables that only readers use (no statement of `apply_range` needs them): a
    # rebuild fills the shadow copies without them and builds them once it has caught up, in
    # one sorted pass each, before the swap (rebuild.py).
    rebuild_deferred_indexes: ClassVar[tuple[str, ...]] = ()
    # A rebuild in log order (`by_positions = False`) may prepare each page ahead on its reading
    # connection while the page before is applied (`stage_range`), into this many slots used in
    # turn (0: it does not; rebuild_pages.py never has more pages prepared and not yet applied).
    rebuild_stage_slots: ClassVar[int] = 0

    @abstractmethod
    async def apply_range(self, conn: AsyncConnection[Any], log: LogRange) -> None:
        """Apply every event of `handles` in `log` (use `log.where()` and `log.params(self)`)."""

    async def stage_range(self, conn: AsyncConnection[Any], log: LogRange, slot: int) -> None:
        """With `rebuild_stage_slots`: on a rebuild's reading connection (autocommit), prepare
        into `slot` what `apply_range` of `log` needs that depends on the log only (slot `slot`
        is free: the page it held is applied). `apply_range` then gets the range with
        `staged = slot`, in a transaction of the applying connection."""
        raise NotImplementedError(f"{self.name} prepares no pages ahead")

    async def clear_stage(self, conn: AsyncConnection[Any]) -> None:
        """Empty the slots of `stage_range` (at the end of a rebuild, on its reading connection)."""

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        # A batch from the runner holds every handled event between its first and last.
        if events:
            first = events[0]
            before = Checkpoint(first.transaction_id, first.global_position - 1)
            await self.apply_range(conn, LogRange.between(before, events[-1].checkpoint))
