"""The bulk path of the event store: high-volume facts by COPY, idempotent by event id.

`EventStore.append_bulk` (postgres.py) is the entry point; this module builds the COPY rows
and writes the ones the log does not hold yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, errors

from lufy.eventstore.codec import EventCodec
from lufy.eventstore.envelope import NewEvent
from lufy.sqlfiles import load_queries

__all__ = ["BulkResult", "copy_rows", "write_fresh"]

_Q = load_queries("lufy.eventstore")


class BulkResult(msgspec.Struct, frozen=True):
    inserted: list[uuid.UUID]
    duplicates: list[uuid.UUID]


def copy_rows(
    codec: EventCodec, events: Sequence[NewEvent]
) -> tuple[dict[uuid.UUID, tuple[Any, ...]], list[uuid.UUID]]:
    """The COPY row of each event by its id, and the ids repeated within `events`."""
    rows: dict[uuid.UUID, tuple[Any, ...]] = {}
    duplicates: list[uuid.UUID] = []
    now = datetime.now(UTC)
    for item in events:
        if item.stream_type is None or item.stream_id is None:
            raise ValueError("bulk events need stream_type and stream_id")
        if item.event_id in rows:
            duplicates.append(item.event_id)
            continue
        type_name, version, data = codec.encode(item.event)
        rows[item.event_id] = (
            item.event_id,
            item.stream_type,
            item.stream_id,
            type_name,
            version,
            data,
            codec.encode_metadata(item.metadata),
            item.occurred_at or now,
        )
    return rows, duplicates


async def write_fresh(
    conn: AsyncConnection[Any],
    rows: dict[uuid.UUID, tuple[Any, ...]],
    duplicates: list[uuid.UUID],
    *,
    notify_in_tx: bool,
) -> BulkResult:
    """COPY the rows whose ids are not in the log yet, in a transaction (or savepoint) of its
    own, and NOTIFY with it when `notify_in_tx`. A concurrent batch that carried some of the
    same ids makes it look again (three tries in all)."""
    for attempt in range(3):
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    _Q.existing_event_ids, {"event_ids": list(rows)}, prepare=True
                )
                existing = {r[0] for r in await cur.fetchall()}
                fresh = [row for key, row in rows.items() if key not in existing]
                if fresh:
                    async with conn.cursor() as cc, cc.copy(_Q.copy_events) as copy:
                        for row in fresh:
                            await copy.write_row(row)
                    if notify_in_tx:
                        await conn.execute(_Q.notify, prepare=True)
            return BulkResult(
                inserted=[r[0] for r in fresh],
                duplicates=duplicates + [k for k in rows if k in existing],
            )
        except errors.UniqueViolation:
            # A concurrent batch carried some of the same ids; look again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
