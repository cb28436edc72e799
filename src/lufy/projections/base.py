"""What a projection is: a name, a version, the event types it handles, and `apply`.

Rules every projection follows (the log-applier, `projections.applier`, relies on them):
- It refers to its own tables *unqualified* (`INSERT INTO track_rollup ...`): the applier sets
  `search_path` per transaction, pointing at the live schema (`lufy`) for live processing and at
  a shadow schema for rebuilds, so replay is the same code path as live processing.
- `apply` is deterministic given the events: it reads only its own tables and the events, never
  the clock or other read models, and tolerates seeing an event it has applied before only
  where the runner says so (it does not: checkpoint and read model commit together).
- Inline projections (`inline = True`) are applied in the append's transaction by
  `append_inline`; async ones by the projector. Both are rebuilt the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from psycopg import AsyncConnection

from lufy.eventstore.envelope import RecordedEvent

__all__ = ["Projection"]


class Projection(ABC):
    name: ClassVar[str]
    version: ClassVar[int] = 1
    handles: ClassVar[frozenset[str]]
    # Tables this projection owns (unqualified names), rebuilt together.
    tables: ClassVar[tuple[str, ...]] = ()
    inline: ClassVar[bool] = False

    @abstractmethod
    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        """Apply a batch of events (already filtered to `handles`) in the caller's transaction."""
