"""The bulk path of the event store: high-volume facts by COPY, idempotent by event id.

`EventStore.append_bulk` (postgres.py) is the entry point; this module builds the COPY rows
and writes the ones the log does not hold yet.

Rows are built as lines of COPY's text format, by string formatting, and a batch is sent in
one `write`: per row that is a few C-level string operations instead of psycopg's per-value
dumpers (`write_row` cost about as much as encoding the event). The ids of a batch go to the
idempotency check as one array literal, for the same reason.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, errors

from lufy.eventstore.codec import EventCodec
from lufy.eventstore.envelope import NewEvent
from lufy.sqlfiles import load_queries

__all__ = ["BulkResult", "BulkRows", "copy_rows", "write_fresh"]

_Q = load_queries("lufy.eventstore")

# What COPY's text format gives a meaning to inside a field (NUL cannot be sent at all: the
# server rejects it, as it did when psycopg formatted the rows).
_SPECIAL = re.compile(r"[\\\t\n\r]")
_BACKSLASH, _BACKSLASH_ESCAPED = "\\", "\\\\"
_ENCODER = msgspec.json.Encoder()
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class BulkResult(msgspec.Struct, frozen=True):
    inserted: list[uuid.UUID]
    duplicates: list[uuid.UUID]


def _text(value: str) -> str:
    """A text field as COPY's text format reads it back unchanged."""
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


class BulkRows(msgspec.Struct, frozen=True):
    """A batch encoded for COPY (`copy_rows`): each distinct event's id and line, and the ids
    repeated within the batch."""

    rows: list[tuple[uuid.UUID, str]]
    duplicates: list[uuid.UUID]
    # The ids of `rows` as one array literal, for the idempotency check.
    ids: str
    # Look up which ids the log holds before the COPY (the default). Without it the rows are
    # copied straight away and the unique index on event_id is the check: a batch that holds
    # an id the log has fails as a whole, and is written again after the lookup (cheaper for
    # big batches of new events, such as an import's: one index probe per id less).
    check_first: bool = True


def copy_rows(codec: EventCodec, events: Sequence[NewEvent]) -> BulkRows:
    """The COPY line of each event, and the ids repeated within `events`. `data` and
    `metadata` are JSON as msgspec writes it (control characters escaped), so only their
    backslashes need doubling. The ids and times of the whole batch are encoded in one msgspec
    call each (`str(uuid)` and `isoformat` are Python-level calls per row)."""
    fresh: list[NewEvent] = []
    streams: list[tuple[str, str]] = []
    duplicates: list[uuid.UUID] = []
    seen: set[int] = set()
    for item in events:
        if item.stream_type is None or item.stream_id is None:
            raise ValueError("bulk events need stream_type and stream_id")
        key = item.event_id.int
        if key in seen:
            duplicates.append(item.event_id)
            continue
        seen.add(key)
        fresh.append(item)
        streams.append((item.stream_type, item.stream_id))
    if not fresh:
        return BulkRows([], duplicates, "{}")
    now = datetime.now(UTC)
    # '["<uuid>","<uuid>",…]' and '["<time>",…]': neither holds a quote or a comma inside.
    ids = _ENCODER.encode([item.event_id for item in fresh]).decode()[2:-2].split('","')
    times = _ENCODER.encode([item.occurred_at or now for item in fresh]).decode()
    # A batch usually shares one metadata object (the ingestor's): encoded once.
    metadata_text: dict[int, str] = {}
    # Stream types and event types repeat: each escaped once.
    names: dict[str, str] = {}
    rows: list[tuple[uuid.UUID, str]] = []
    append = rows.append
    for item, (stream_type_name, stream_id), event_id, at in zip(
        fresh, streams, ids, times[2:-2].split('","'), strict=True
    ):
        type_name, version, data = codec.encode(item.event)
        meta = metadata_text.get(id(item.metadata))
        if meta is None:
            meta = codec.encode_metadata(item.metadata).replace(_BACKSLASH, _BACKSLASH_ESCAPED)
            metadata_text[id(item.metadata)] = meta
        stream_type = names.get(stream_type_name)
        if stream_type is None:
            stream_type = names[stream_type_name] = _text(stream_type_name)
        type_text = names.get(type_name)
        if type_text is None:
            type_text = names[type_name] = _text(type_name)
        append(
            (
                item.event_id,
                f"{event_id}\t{stream_type}\t{_text(stream_id)}\t{type_text}\t"
                f"{version}\t{data.replace(_BACKSLASH, _BACKSLASH_ESCAPED)}\t{meta}\t{at}\n",
            )
        )
    return BulkRows(rows, duplicates, "{" + ",".join(ids) + "}")


async def write_fresh(
    conn: AsyncConnection[Any], batch: BulkRows, *, notify_in_tx: bool
) -> BulkResult:
    """COPY the rows whose ids are not in the log yet, in a transaction (or savepoint) of its
    own, and NOTIFY with it when `notify_in_tx`. A concurrent batch that carried some of the
    same ids makes it look again (three tries in all, after a first try without looking when
    the batch is not `check_first`)."""
    tries = 3 if batch.check_first else 4
    for attempt in range(tries):
        try:
            async with conn.transaction():
                existing: set[uuid.UUID] = set()
                if batch.check_first or attempt > 0:
                    cur = await conn.execute(
                        _Q.existing_event_ids, {"event_ids": batch.ids}, prepare=True
                    )
                    existing = {r[0] for r in await cur.fetchall()}
                fresh = (
                    [row for row in batch.rows if row[0] not in existing]
                    if existing
                    else batch.rows
                )
                if fresh:
                    async with conn.cursor() as cc, cc.copy(_Q.copy_events) as copy:
                        await copy.write("".join([line for _, line in fresh]))
                    if notify_in_tx:
                        await conn.execute(_Q.notify, prepare=True)
            return BulkResult(
                inserted=[event_id for event_id, _ in fresh],
                duplicates=batch.duplicates + [k for k, _ in batch.rows if k in existing],
            )
        except errors.UniqueViolation:
            # The log holds some of the ids (not looked up first), or a concurrent batch
            # carried some of the same ids: look again.
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")
