"""A page read column by column (EventStore(page_reader="columns"), the default).

`read_page_columns` (queries.sql) sends a page as one row: each column of the page is one text,
its values in log order, separated so that most columns are a JSON array once brackets are put
around them (numbers by commas, event ids and timestamps as strings, metadata objects by commas).
So each column is decoded by one msgspec call into the values RecordedEvent holds (`int`,
`uuid.UUID`, `datetime`, EventMetadata), the payloads by one call for the page
(EventCodec.decode_payloads), the three app strings (stream type, stream id, event type) are split
on U+001F, and the events are built from the columns. Nothing is assembled per event: the other
readers write each event's JSON object (plainpage.py) and decode the page in one call, which
measured ~40 percent more instructions per event on the client, and their per-event line and
ordered aggregate cost the server more too (docs/benchmarks.md, "es-read3").

What makes it exact:
- The aggregates of read_page_columns take the rows in the order page_rows returns them, which
  PostgreSQL does in practice without promising it: `fetch_column_page` checks that the keys
  (transaction id, position) ascend, and reads a page whose keys do not with read_page_text,
  whose aggregate is ordered.
- An app string may hold U+001F: a page whose app-string columns do not split into its events
  is read again one row per event (read_page_plain), as read_page_text's pages are. `data` and
  `metadata` cannot hold it (JSONB escapes control characters), nor can numbers, UUIDs and
  timestamps hold a comma or a quote.
- Anything the decoders cannot place (an unregistered type, a payload that no longer fits its
  Struct, timestamps in another date style than ISO) raises msgspec's errors, and
  EventStore.decode_page reads the page again event by event, as for every reader.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from itertools import islice
from operator import lt
from typing import TYPE_CHECKING, Any

import msgspec
from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint, EventMetadata, RecordedEvent
from lufy.eventstore.plainpage import fetch_plain_page
from lufy.eventstore.reading import PageColumns, RawPage, page_query
from lufy.sqlfiles import load_queries

if TYPE_CHECKING:
    from lufy.eventstore.codec import EventCodec

__all__ = ["decode_columns", "fetch_column_page"]

_Q = load_queries("lufy.eventstore")
_READ_PAGE_COLUMNS = page_query(_Q.read_page_columns)
_SEP = b"\x1f"
_ints = msgspec.json.Decoder(list[int])
_stream_versions = msgspec.json.Decoder(list[int | None])
_ids = msgspec.json.Decoder(list[uuid.UUID])
_times = msgspec.json.Decoder(list[datetime])
_metadata = msgspec.json.Decoder(list[EventMetadata])


def _int(value: bytes | None) -> int:
    """A bigint in PostgreSQL's binary format."""
    assert value is not None
    return int.from_bytes(value, "big", signed=True)


async def fetch_column_page(
    conn: AsyncConnection[Any],
    params: dict[str, Any],
    after: Checkpoint,
    limit: int,
    current: dict[str, int],
) -> RawPage:
    """EventStore.fetch_page with read_page_columns (page_reader="columns"): the same RawPage as
    the other readers, its body the page's columns (decoded by `decode_columns`). A page whose
    app strings do not split into its events is read again as rows (read_page_plain), one whose
    keys do not ascend with read_page_text. `current`: PageDecoding.current."""
    cur = await conn.execute(_READ_PAGE_COLUMNS, params, prepare=True, binary=True)
    res = cur.pgresult
    assert res is not None
    value = res.get_value
    barrier, pending, count = _int(value(0, 0)), value(0, 1) == b"\x01", _int(value(0, 2))
    types = params["types"]
    if count == 0:
        return RawPage(after, limit, types, "[]", 0, barrier, pending, None)
    texts: list[Any] = [value(0, i) for i in range(3, 15)]
    encoding = conn.info.encoding
    if encoding != "utf-8":
        texts = [text.decode(encoding).encode() for text in texts]
    if any(texts[i].count(_SEP) != count - 1 for i in (3, 4, 6)):
        # An app string holds U+001F.
        return await fetch_plain_page(conn, params, after, limit, current, one_row=False)
    positions = _ints.decode(b"[" + texts[0] + b"]")
    transactions = _ints.decode(b"[" + texts[1] + b"]")
    keys = list(zip(transactions, positions, strict=True))
    if len(keys) != count or not all(map(lt, keys, islice(keys, 1, None))):
        # Not in log order: the aggregates took another order than page_rows'.
        return await fetch_plain_page(conn, params, after, limit, current, one_row=True)
    texts[0], texts[1] = positions, transactions
    body = PageColumns(*texts)
    return RawPage(after, limit, types, body, count, barrier, pending, Checkpoint(*keys[-1]))


def decode_columns(codec: EventCodec, page: PageColumns) -> list[RecordedEvent]:
    """The events of a page that fetch_column_page read (its keys ascend, its app strings split
    into its events), one msgspec call per column. Raises msgspec.DecodeError/ValidationError
    where EventCodec.decode_page would."""
    positions = page.positions
    n = len(positions)
    types = page.types.decode().split("\x1f")
    versions = _ints.decode(b"[" + page.schema_versions + b"]")
    columns = (
        positions,
        page.transactions,
        _ids.decode(b'["' + page.event_ids + b'"]'),
        page.stream_types.decode().split("\x1f"),
        page.stream_ids.decode().split("\x1f"),
        _stream_versions.decode(b"[" + page.stream_versions + b"]"),
        types,
        versions,
        codec.decode_payloads(types, versions, page.data),
        _metadata.decode(b"[" + page.metadata + b"]"),
        _times.decode(b'["' + page.occurred_at + b'Z"]'),
        _times.decode(b'["' + page.recorded_at + b'Z"]'),
    )
    if any(len(column) != n for column in columns):
        raise msgspec.DecodeError("the page's columns do not hold its events")
    return [
        RecordedEvent(
            global_position=pos,
            transaction_id=tx,
            event_id=event_id,
            stream_type=stream_type,
            stream_id=stream_id,
            stream_version=stream_version,
            type=type_,
            schema_version=version,
            data=data,
            metadata=metadata,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
        )
        for (
            pos,
            tx,
            event_id,
            stream_type,
            stream_id,
            stream_version,
            type_,
            version,
            data,
            metadata,
            occurred_at,
            recorded_at,
        ) in zip(*columns, strict=True)
    ]
