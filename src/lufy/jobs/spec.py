"""What a reactor asks for: one job, identified by (actor, key)."""

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
