"""Append and update inline read models in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from lufy.eventstore.envelope import AppendResult, Event, ExpectedVersion, NewEvent, RecordedEvent
from lufy.eventstore.postgres import EventStore
from lufy.projections.applier import apply_events
from lufy.projections.base import Projection

__all__ = ["append_inline"]


async def append_inline(
    store: EventStore,
    conn: AsyncConnection[Any],
    stream_type: str,
    stream_id: str,
    events: Sequence[NewEvent | Event],
    *,
    expected: ExpectedVersion,
    projections: Sequence[Projection],
) -> tuple[AppendResult, list[RecordedEvent]]:
    """Append to one stream and apply `projections` to the new events, in `conn`'s transaction.

    The caller must hold a transaction open on `conn` so that the events and the read model
    commit or roll back together; the projections are applied by the log-applier
    (`projections.applier.apply_events`), in the caller's role. An idempotent replay applies
    nothing.
    """
    now = datetime.now(UTC)
    items = [
        msgspec.structs.replace(e, occurred_at=e.occurred_at or now)
        if isinstance(e, NewEvent)
        else NewEvent(event=e, occurred_at=now)
        for e in events
    ]
    result = await store.append(conn, stream_type, stream_id, items, expected=expected)
    if result.idempotent_replay:
        return result, []
    first_version = result.stream_version - len(items) + 1
    recorded = [
        RecordedEvent(
            global_position=position,
            transaction_id=result.transaction_id,
            event_id=item.event_id,
            stream_type=stream_type,
            stream_id=stream_id,
            stream_version=first_version + i,
            type=store.codec.type_of(type(item.event)),
            schema_version=type(item.event).schema_version,
            data=item.event,
            metadata=item.metadata,
            occurred_at=item.occurred_at or now,
            recorded_at=now,
        )
        for i, (item, position) in enumerate(zip(items, result.positions, strict=True))
    ]
    await apply_events(conn, projections, recorded)
    return result, recorded
