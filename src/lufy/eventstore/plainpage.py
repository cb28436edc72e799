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
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, AnyStr, Generic

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


class _Glue(Generic[AnyStr]):
    """The JSON text around the columns, as `str` (the text and plain readers) or as `bytes`
    (the copy reader, copypage.py, whose page is never decoded to `str`)."""

    def __init__(self, encode: Callable[[str], AnyStr]) -> None:
        self.encode: Callable[[str], AnyStr] = encode
        self.prefixes: tuple[AnyStr, ...] = tuple(encode(p) for p in _PREFIXES)
        self.unsafe: re.Pattern[AnyStr] = re.compile(encode(r'["\\\x00-\x1f]'))
        self.empty: AnyStr = encode("")
        self.null: AnyStr = encode("null")
        self.nothing: AnyStr = encode("{}")
        self.open: AnyStr = encode("[")
        self.close: AnyStr = encode('Z"}]')
        # `%s` formats str into str and bytes into bytes.
        self.tag_only: AnyStr = encode('{"type":"%s"}')
        self.tagged: AnyStr = encode('{"type":"%s",%s')
        self.undecoded: AnyStr = encode('{"type":"lufy.undecoded","payload":%s}')
        self.one: AnyStr = encode("1")

    def escaped(self, values: list[AnyStr]) -> list[AnyStr]:
        """The column as JSON string contents: as it is when nothing in it needs escaping."""
        if self.unsafe.search(self.empty.join(values)) is None:
            return values
        return [self.encode(_encoder.encode(_text(v)).decode()[1:-1]) for v in values]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


_STR: _Glue[str] = _Glue(str)
_BYTES: _Glue[bytes] = _Glue(str.encode)


def _tagged(
    glue: _Glue[Any],
    types: list[Any],
    tags: list[Any],
    versions: list[Any],
    datas: list[Any],
    current: dict[str, int],
) -> list[Any]:
    """`data` with its type tag (`tags`: the types escaped) first, or wrapped as lufy.undecoded
    when it is stored at another schema version than the codec's current one (as read_page)."""
    tag_only, tagged, nothing = glue.tag_only, glue.tagged, glue.nothing
    if set(versions) == {glue.one} and not (current and current.keys() & set(map(_text, types))):
        if glue is _STR:  # f-strings: half the time of `%` on str
            return [
                f'{{"type":"{t}"}}' if d == "{}" else f'{{"type":"{t}",{d[1:]}'
                for t, d in zip(tags, datas, strict=True)
            ]
        return [
            tag_only % t if d == nothing else tagged % (t, d[1:])
            for t, d in zip(tags, datas, strict=True)
        ]
    out = []
    for raw, t, v, d in zip(types, tags, versions, datas, strict=True):
        if int(v) != current.get(_text(raw), 1):
            out.append(glue.undecoded % d)
        elif d == nothing:
            out.append(tag_only % t)
        else:
            out.append(tagged % (t, d[1:]))
    return out


def assemble_fields(fields: list[Any], current: dict[str, int]) -> Any:
    """The events' columns, `_WIDTH` values each in read_page_plain's order (every value as its
    text, `str` or `bytes`, a NULL stream version as None or "null"), as the JSON array of
    RecordedEvent objects that read_page returns (`str` or `bytes`, as the values). Changes
    `fields`. `current`: PageDecoding.current."""
    n = len(fields) // _WIDTH
    if n == 0:
        return "[]"
    glue: _Glue[Any] = _BYTES if isinstance(fields[0], bytes) else _STR
    types = fields[_TYPE::_WIDTH]
    for col in (_STREAM_TYPE, _STREAM_ID, _TYPE):
        fields[col::_WIDTH] = glue.escaped(fields[col::_WIDTH])
    stream_versions = fields[_STREAM_VERSION::_WIDTH]
    if None in stream_versions:
        null = glue.null
        fields[_STREAM_VERSION::_WIDTH] = [null if v is None else v for v in stream_versions]
    fields[_DATA::_WIDTH] = _tagged(
        glue,
        types,
        fields[_TYPE::_WIDTH],
        fields[_SCHEMA_VERSION::_WIDTH],
        fields[_DATA::_WIDTH],
        current,
    )
    parts: list[Any] = [glue.empty] * (2 * _WIDTH * n)
    parts[0::2] = glue.prefixes * n
    parts[1::2] = fields
    return glue.open + glue.empty.join(parts)[4:] + glue.close


def assemble(rows: Sequence[Sequence[Any]], current: dict[str, int]) -> str:
    """read_page_plain's rows (barrier, `pending`, then the event's columns; NULL as None) as
    the JSON array of RecordedEvent objects that read_page returns."""
    if not rows or rows[0][2] is None:
        return "[]"
    fields: list[Any] = list(chain.from_iterable(rows))
    del fields[0 :: _WIDTH + 2]  # the barrier
    del fields[0 :: _WIDTH + 1]  # `pending`
    body: str = assemble_fields(fields, current)
    return body


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
