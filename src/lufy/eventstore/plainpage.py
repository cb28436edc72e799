"""A page read as plain columns, its JSON assembled on the client (EventStore(page_reader=
"text"), the default, and "plain").

`read_page` (queries.sql) has the server write every event as the JSON object RecordedEvent
decodes from; that costs the server several times what sending the plain columns costs
(docs/benchmarks.md, issue 18). `read_page_text` sends the plain columns, in text, as one value
per page (the columns separated by U+001F; a page whose text does not split into its events'
columns, because an app string holds U+001F, is read again with `read_page_plain`, one row per
event, which the "plain" reader always uses). This module builds the same JSON array from them
with a few list and string operations over the whole page (no Python call per field), so the page
is still decoded by one msgspec call (codec.decode_page).

What makes the text of each column valid inside the JSON: numbers and UUIDs are plain; `data`
and `metadata` are JSONB, whose text is JSON; the timestamps come in UTC without an offset
(`YYYY-MM-DD HH:MM:SS[.ffffff]` in the ISO date style; the client adds `Z`, and any other date
style fails to decode, which sends the page to the precise path); the three app strings
(stream type, stream id, event type) are written into JSON strings as they are unless a page has
a quote, a backslash or a control character in that column, and then that column is escaped
value by value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain
from typing import Any

import msgspec
from psycopg import AsyncConnection, AsyncCursor
from psycopg.types.string import TextLoader

from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.reading import RawPage, page_query, raw_page
from lufy.sqlfiles import load_queries

__all__ = ["assemble", "assemble_fields", "fetch_plain_page"]

_Q = load_queries("lufy.eventstore")
_encoder = msgspec.json.Encoder()
_READ_PAGE_TEXT = page_query(_Q.read_page_text)
_READ_PAGE_PLAIN = page_query(_Q.read_page_plain)
_SEP = "\x1f"  # between the values of read_page_text's body

# int8, int4, bool, uuid, xid8, timestamp, jsonb: load their text as it is (str), in C.
_TEXT_OIDS = (20, 23, 16, 2950, 5069, 1114, 3802)
_WIDTH = 12  # an event's columns (read_page_plain's, after the barrier and `pending`)
_STREAM_TYPE, _STREAM_ID, _STREAM_VERSION, _TYPE, _SCHEMA_VERSION, _DATA = 3, 4, 5, 6, 7, 8
_UNSAFE = re.compile(r'["\\\x00-\x1f]')
# What goes before each column of an event; the first event's `Z"},` is cut off, and the last
# event is closed after the join.
_PREFIXES = (
    'Z"},{"global_position":',
    ',"transaction_id":',
    ',"event_id":"',
    '","stream_type":"',
    '","stream_id":"',
    '","stream_version":',
    ',"type":"',
    '","schema_version":',
    ',"data":',
    ',"metadata":',
    ',"occurred_at":"',
    'Z","recorded_at":"',
)


def _escaped(values: list[str]) -> list[str]:
    """The column as JSON string contents: as it is when nothing in it needs escaping."""
    if _UNSAFE.search("".join(values)) is None:
        return values
    return [_encoder.encode(v).decode()[1:-1] for v in values]


def _tagged(
    types: list[str],
    tags: list[str],
    versions: list[str],
    datas: list[str],
    current: dict[str, int],
) -> list[str]:
    """`data` with its type tag (`tags`: the types escaped) first, or wrapped as lufy.undecoded
    when it is stored at another schema version than the codec's current one (as read_page)."""
    if set(versions) == {"1"} and not current.keys() & set(types):
        return [
            f'{{"type":"{t}"}}' if d == "{}" else f'{{"type":"{t}",{d[1:]}'
            for t, d in zip(tags, datas, strict=True)
        ]
    out = []
    for raw, t, v, d in zip(types, tags, versions, datas, strict=True):
        if int(v) != current.get(raw, 1):
            out.append(f'{{"type":"lufy.undecoded","payload":{d}}}')
        elif d == "{}":
            out.append(f'{{"type":"{t}"}}')
        else:
            out.append(f'{{"type":"{t}",{d[1:]}')
    return out


def assemble_fields(fields: list[Any], current: dict[str, int]) -> str:
    """The events' columns, `_WIDTH` values each in read_page_plain's order (every value as its
    text, a NULL stream version as None or "null"), as the JSON array of RecordedEvent objects
    that read_page returns. Changes `fields`. `current`: PageDecoding.current."""
    n = len(fields) // _WIDTH
    if n == 0:
        return "[]"
    types = fields[_TYPE::_WIDTH]
    for col in (_STREAM_TYPE, _STREAM_ID, _TYPE):
        fields[col::_WIDTH] = _escaped(fields[col::_WIDTH])
    stream_versions = fields[_STREAM_VERSION::_WIDTH]
    if None in stream_versions:
        fields[_STREAM_VERSION::_WIDTH] = ["null" if v is None else v for v in stream_versions]
    fields[_DATA::_WIDTH] = _tagged(
        types,
        fields[_TYPE::_WIDTH],
        fields[_SCHEMA_VERSION::_WIDTH],
        fields[_DATA::_WIDTH],
        current,
    )
    parts: list[str] = [""] * (2 * _WIDTH * n)
    parts[0::2] = _PREFIXES * n
    parts[1::2] = fields
    return "[" + "".join(parts)[4:] + 'Z"}]'


def assemble(rows: Sequence[Sequence[Any]], current: dict[str, int]) -> str:
    """read_page_plain's rows (barrier, `pending`, then the event's columns; NULL as None) as
    the JSON array of RecordedEvent objects that read_page returns."""
    if not rows or rows[0][2] is None:
        return "[]"
    fields: list[Any] = list(chain.from_iterable(rows))
    del fields[0 :: _WIDTH + 2]  # the barrier
    del fields[0 :: _WIDTH + 1]  # `pending`
    return assemble_fields(fields, current)


async def fetch_plain_page(
    conn: AsyncConnection[Any],
    params: dict[str, Any],
    after: Checkpoint,
    limit: int,
    current: dict[str, int],
    *,
    one_row: bool = True,
) -> RawPage:
    """EventStore.fetch_page with read_page_text (`one_row`, page_reader="text") or
    read_page_plain (page_reader="plain"): the same RawPage, its body built here. A page whose
    text does not split into its events' columns (an app string holds U+001F) is read again as
    rows."""
    if one_row:
        page = await _text_page(conn, params, after, limit, current)
        if page is not None:
            return page
    cur: AsyncCursor[Any]
    async with conn.cursor() as cur:
        for oid in _TEXT_OIDS:
            cur.adapters.register_loader(oid, TextLoader)
        await cur.execute(_READ_PAGE_PLAIN, params, prepare=True)
        rows = await cur.fetchall()
    first, last = rows[0], rows[-1]
    empty = first[2] is None
    return RawPage(
        after=after,
        limit=limit,
        types=params["types"],
        body=assemble(rows, current),
        count=0 if empty else len(rows),
        barrier=int(first[0]),
        pending=first[1] == "t",
        last=None if empty else Checkpoint(int(last[3]), int(last[2])),
    )


async def _text_page(
    conn: AsyncConnection[Any], params: dict[str, Any], *page: Any
) -> RawPage | None:
    """The page from read_page_text; None when its text does not split into its events'
    columns. `page`: fetch_plain_page's after, limit, current."""
    after, limit, current = page
    cur = await conn.execute(_READ_PAGE_TEXT, params, prepare=True, binary=True)
    row = await cur.fetchone()
    assert row is not None
    barrier, pending, count, text = row
    if text is None:
        return raw_page((barrier, pending, 0, None, None, None), after, limit, params["types"])
    fields = text.split(_SEP)
    if len(fields) != count * _WIDTH:
        return None
    last = (fields[-_WIDTH + 1], fields[-_WIDTH])  # the last event's transaction id, position
    body = assemble_fields(fields, current)
    return raw_page((barrier, pending, count, *last, body), after, limit, params["types"])
