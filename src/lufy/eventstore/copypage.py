"""A page read with `COPY (SELECT …) TO STDOUT` (EventStore(page_reader="copy")).

The server sends read_page_plain's rows (the barrier, `pending`, then the event's plain columns)
through `COPY … TO STDOUT` in its text format: it runs the columns' output functions and writes
them out, the work of the `COPY` the catch-up figure is measured against, where `read_page_text`
also has it join every page into one value with `concat_ws` and an ordered `string_agg` (3.5-4.1
µs of server CPU per event against 2.5: docs/benchmarks.md, issue 18). psycopg hands a `COPY` out
one row per call of its event-loop machinery (about 2.6 µs per row), so the rows are taken here in
one wait (`_rows`): every row libpq already holds is read in a tight loop of
`PGconn.get_copy_data` calls, libpq reads the socket again when they run out, and the loop only
waits on the socket when such a read brought no whole row.

The page's text is then split on tabs and newlines in one call (in `COPY`'s text format a raw tab
or newline only ever separates values and rows: one inside a value is written `\\t`, `\\n`) and
handed to plainpage.assemble_fields, so it is decoded by one msgspec call as every page is. A
page without a backslash has nothing escaped; otherwise the columns that can hold one (the app
strings, `data`, `metadata`, and the stream version's NULL `\\N`) are unescaped exactly, column
by column. Unlike `read_page_text`, no value can break the split (U+001F is an ordinary
character here), so no page is read twice.

Measured against the default reader ("text"), same runs (docs/benchmarks.md, "Catch-up over
COPY"): 23-29 percent less server CPU per event, as much client CPU or a little more (one
`get_copy_data` call per row), and in the catch-up figure, which this process's CPU bounds,
11-26 percent fewer events per second: it is there for a database whose CPU is the scarcer.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.abc import PQGen
from psycopg.errors import error_from_result
from psycopg.generators import fetch_many
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg.waiting import Wait

from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.plainpage import assemble_fields
from lufy.eventstore.reading import RawPage
from lufy.sqlfiles import load_queries

__all__ = ["fetch_copy_page", "split_copy_text"]

_Q = load_queries("lufy.eventstore")
_SELECT = sql.SQL(_Q.read_page_plain).format(page_rows=sql.SQL(_Q.page_rows))
_READ_PAGE_COPY = sql.SQL(_Q.read_page_copy).format(select=_SELECT).as_bytes(None)
_ROW = 14  # a row of read_page_plain: the barrier, `pending`, an event's 12 columns
_WIDTH = _ROW - 2
# Columns of an event (read_page_plain's order) whose text can hold a backslash in COPY's text
# format: the stream type, stream id, type, data and metadata (the stream version's NULL is sent
# as `null`, and no other column is NULL in an event's row).
_ESCAPABLE = (3, 4, 6, 8, 9)
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
# What COPY TO writes after a backslash (CopyAttributeOutText): itself, or a control character.
_ESCAPED = {
    b"\\": b"\\",
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"v": b"\v",
}


def _unescape(match: re.Match[bytes]) -> bytes:
    return _ESCAPED[match.group(1)]


def split_copy_text(text: bytes) -> list[bytes] | None:
    """The values of read_page_plain's rows in COPY's text format (UTF-8), `_ROW` per row,
    unescaped. None for the empty page (one row of the barrier and `pending`, then NULLs)."""
    fields = text.replace(b"\n", b"\t").split(b"\t")
    fields.pop()  # after the last row's newline
    if fields[2] == b"\\N":
        return None
    if b"\\" not in text:
        return fields
    for col in _ESCAPABLE:
        joined = b"\x00".join(fields[2 + col :: _ROW])  # a PostgreSQL text never holds NUL
        if b"\\" in joined:
            fields[2 + col :: _ROW] = _ESCAPE.sub(_unescape, joined).split(b"\x00")
    return fields


def _rows(conn: AsyncConnection[Any]) -> PQGen[list[Any]]:
    """The rest of a `COPY … TO STDOUT` that has started on `conn` (psycopg's Copy): every row,
    read in one wait. What psycopg's own Copy.read does per row (copy_from), for all of them."""
    pgconn = conn.pgconn
    get = pgconn.get_copy_data
    rows: list[Any] = []
    append = rows.append
    seen = -1  # how many rows there were at the last read of the socket
    while True:
        nbytes, data = get(1)
        while nbytes > 0:
            append(data)
            nbytes, data = get(1)
        if nbytes < 0:
            break
        # libpq holds no whole row: read what the socket has (the server writes while this
        # process decodes another page), and only wait for the socket when the last read
        # brought no row (a round of the event loop costs more than a read).
        if len(rows) == seen:
            while not (yield Wait.R):
                pass
        seen = len(rows)
        pgconn.consume_input()
    results = yield from fetch_many(pgconn)
    for result in results:
        if result.status != ExecStatus.COMMAND_OK:
            raise error_from_result(result, encoding=conn.info.encoding)
    return rows


async def _settle(conn: AsyncConnection[Any]) -> None:
    """After a page was cut off (its task cancelled): when the `COPY` had started (psycopg
    cancels a query it is interrupted in, but one interrupted while the `COPY` starts is left
    sending its rows), read it to its end (or the error the cancel brings), so the connection
    can run the next query."""
    if conn.pgconn.transaction_status != TransactionStatus.ACTIVE:
        return
    with contextlib.suppress(psycopg.Error):
        await conn.wait(_rows(conn))


async def fetch_copy_page(
    conn: AsyncConnection[Any], after: Checkpoint, params: dict[str, Any], current: dict[str, int]
) -> RawPage:
    """EventStore.fetch_page with read_page_copy (page_reader="copy"): the same RawPage as the
    other readers, its body built by plainpage.assemble_fields. `params`: read_page's,
    `current`: PageDecoding.current."""
    limit = params["limit"]
    try:
        async with conn.cursor() as cur, cur.copy(_READ_PAGE_COPY, params):
            rows = await conn.wait(_rows(conn))
    except BaseException:
        await _settle(conn)
        raise
    text = b"".join(rows)
    encoding = conn.info.encoding
    if encoding != "utf-8":
        text = text.decode(encoding).encode()
    fields = split_copy_text(text)
    types = params["types"]
    if fields is None:
        head = text.split(b"\t", 2)
        return RawPage(after, limit, types, "[]", 0, int(head[0]), head[1] == b"t", None)
    barrier, pending = int(fields[0]), fields[1] == b"t"
    del fields[0::_ROW]  # the barrier
    del fields[0 :: _ROW - 1]  # `pending`
    count = len(fields) // _WIDTH
    last = Checkpoint(int(fields[-_WIDTH + 1]), int(fields[-_WIDTH]))
    body = assemble_fields(fields, current)
    return RawPage(after, limit, types, body, count, barrier, pending, last)
