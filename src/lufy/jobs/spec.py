"""What a reactor asks for: one job, identified by (actor, key).

A job has two types on purpose. `JobSpec` (here) is the request: what a reactor or the scheduler
wants done, its correlation left empty for the runner to fill from the causing event, and not yet
known to anyone. `lufy.jobs.broker.QueuedJob` is the ledger's answer: a row that `lufy.jobs`
holds (recorded in the same transaction as the projection's checkpoint, or found lost by the
sweeper), with its correlation filled in. Only a `QueuedJob` can be sent to Redis
(`lufy.jobs.ledger.enqueue`), so the types keep the rule that nothing reaches the broker that
the ledger has not recorded first; `record` returns None for a job the ledger already knows,
which is how a duplicate request is never sent twice.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["JobSpec"]


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A job the log implies. `key` makes it idempotent: the same (actor, key) runs to
    completion once, however often it is recorded or delivered (use the event id)."""

    actor: str
    queue: str
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    key: str
    # Filled from the causing event's metadata by the runner when left empty.
    correlation_id: str | None = None
    causation_id: str | None = None
