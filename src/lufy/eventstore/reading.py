"""A page of the log as the server sent it (RawPage): read_page's parameters and row."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, LiteralString

import msgspec
from psycopg import AsyncConnection, sql

from lufy.eventstore.envelope import Checkpoint
from lufy.sqlfiles import load_queries

__all__ = ["PageColumns", "RawPage", "fetch_json_page", "page_params", "page_query", "raw_page"]

_Q = load_queries("lufy.eventstore")


def page_query(template: LiteralString) -> bytes:
    """A page query (read_page, read_page_plain) with the page's rows (page_rows) filled in."""
    return sql.SQL(template).format(page_rows=sql.SQL(_Q.page_rows)).as_bytes(None)


_READ_PAGE = page_query(_Q.read_page)


class PageColumns(msgspec.Struct, frozen=True, gc=False):
    """A page as read_page_columns sends it (columnpage.py): each column's values in log order,
    in one text (UTF-8) each, separated as the query says; the keys already decoded."""

    positions: list[int]
    transactions: list[int]
    event_ids: bytes
    stream_types: bytes
    stream_ids: bytes
    stream_versions: bytes
    types: bytes
    schema_versions: bytes
    data: bytes
    metadata: bytes
    occurred_at: bytes
    recorded_at: bytes


class RawPage(msgspec.Struct, frozen=True):
    """A page as the server sent it (EventStore.fetch_page), before decoding."""

    after: Checkpoint
    limit: int
    types: list[str] | None
    # A JSON array of RecordedEvent objects (read_page in queries.sql, or built by the client
    # from plain columns), or the page column by column (read_page_columns).
    body: str | bytes | PageColumns
    count: int
    barrier: int
    pending: bool
    last: Checkpoint | None  # of the page's last event

    @property
    def full(self) -> bool:
        return self.count >= self.limit

    @property
    def checkpoint(self) -> Checkpoint:
        """Where the next page starts (what decode_page's Page.checkpoint will be)."""
        if self.full and self.last is not None:
            return self.last
        return max(self.after, Checkpoint(self.barrier, 0))


def page_params(after: Checkpoint, limit: int, types: Collection[str] | None) -> dict[str, Any]:
    """The parameters read_page and read_rows share."""
    return {
        "tx": after.transaction_id,
        "pos": after.global_position,
        "limit": limit,
        "types": None if types is None else list(types),
    }


def raw_page(
    row: tuple[Any, ...], after: Checkpoint, limit: int, types: list[str] | None
) -> RawPage:
    """read_page's one row: barrier, pending, count, last tx, last pos, body (NULL when empty)."""
    barrier, pending, count, last_tx, last_pos, body = row
    return RawPage(
        after=after,
        limit=limit,
        types=types,
        body=body if body is not None else "[]",
        count=int(count or 0),
        barrier=int(barrier),
        pending=bool(pending),
        last=Checkpoint(int(last_tx), int(last_pos)) if last_tx is not None else None,
    )


async def fetch_json_page(
    conn: AsyncConnection[Any], params: dict[str, Any], after: Checkpoint, limit: int, versions: str
) -> RawPage:
    """EventStore.fetch_page with read_page (page_reader="json"): the page is one row, one JSON
    array built by the server (building RecordedEvents field by field from binary rows cost
    more than the query)."""
    cur = await conn.execute(_READ_PAGE, params | {"versions": versions}, prepare=True, binary=True)
    row = await cur.fetchone()
    assert row is not None
    return raw_page(row, after, limit, params["types"])
