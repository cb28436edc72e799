"""Reactors: async projections whose effect is to record jobs (the log is the outbox).

A reactor's `jobs(event)` says which jobs an event implies. The projector inserts them into
lufy.jobs in the same transaction as the reactor's checkpoint, and enqueues them on Redis after
commit; the sweeper re-enqueues any whose message is lost. A new reactor starts at the head of
the log: deploying one never replays the past (no e-mail for every old sign-up).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import msgspec
from psycopg import AsyncConnection

from lufy.eventstore.envelope import RecordedEvent
from lufy.jobs.broker import QueuedJob
from lufy.jobs.spec import JobSpec
from lufy.projections.base import Projection
from lufy.sqlfiles import load_queries

__all__ = ["Reactor"]

_Q = load_queries("lufy.jobs")


class Reactor(Projection):
    """Subclass with `name`, `handles` and `jobs(event)`; export instances as `REACTORS`."""

    tables: ClassVar[tuple[str, ...]] = ()
    inline: ClassVar[bool] = False
    # Where a reactor seen for the first time starts: the head of the log.
    start_at_head: ClassVar[bool] = True

    @abstractmethod
    def jobs(self, event: RecordedEvent) -> list[JobSpec]:
        """The jobs `event` implies (often one, keyed by `str(event.event_id)`)."""

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        await self.record(conn, events)

    async def record(
        self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]
    ) -> list[QueuedJob]:
        """Insert the implied jobs; returns those new to the ledger (to enqueue after commit)."""
        specs: list[tuple[JobSpec, RecordedEvent]] = [
            (spec, event) for event in events for spec in self.jobs(event)
        ]
        if not specs:
            return []
        cur = await conn.execute(
            _Q.record_job,
            {
                "actors": [s.actor for s, _ in specs],
                "keys": [s.key for s, _ in specs],
                "queues": [s.queue for s, _ in specs],
                "payloads": [msgspec.json.encode(s.payload).decode() for s, _ in specs],
                "sources": [self.name for _ in specs],
                "positions": [e.global_position for _, e in specs],
                "correlation_ids": [
                    s.correlation_id or e.metadata.correlation_id or str(e.event_id)
                    for s, e in specs
                ],
                "causation_ids": [s.causation_id or str(e.event_id) for s, e in specs],
            },
        )
        return [QueuedJob.from_row(r) for r in await cur.fetchall()]
