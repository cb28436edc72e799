"""Projections that apply a range of the log with one set-based statement.

A rollup over millions of events need not ship each event to Python: `apply_range` runs one
`INSERT … SELECT … FROM lufy.events WHERE (transaction_id, global_position) > after AND
(…) <= upto AND type = ANY(…) GROUP BY … ON CONFLICT …`. The runner hands it exactly the range
of a batch it has read (every transaction in it is finished, so the range is fixed), and a
rebuild reads only positions; live processing and replay remain one code path.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint, RecordedEvent
from lufy.projections.base import Projection

__all__ = ["RangeProjection", "range_params"]


class RangeProjection(Projection):
    inline: ClassVar[bool] = False

    @abstractmethod
    async def apply_range(
        self, conn: AsyncConnection[Any], after: Checkpoint, upto: Checkpoint
    ) -> None:
        """Apply every event of `handles` with after < (transaction_id, global_position) <= upto
        (use `range_params` for the statement's parameters)."""

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        # A batch from the runner holds every handled event between its first and last.
        if events:
            first = events[0]
            before = Checkpoint(first.transaction_id, first.global_position - 1)
            await self.apply_range(conn, before, events[-1].checkpoint)


def range_params(projection: Projection, after: Checkpoint, upto: Checkpoint) -> dict[str, Any]:
    """Parameters `after_tx`, `after_pos`, `upto_tx`, `upto_pos` (cast the tx ones with
    `::text::xid8`) and `types` for a range statement."""
    return {
        "after_tx": after.transaction_id,
        "after_pos": after.global_position,
        "upto_tx": upto.transaction_id,
        "upto_pos": upto.global_position,
        "types": sorted(projection.handles),
    }
