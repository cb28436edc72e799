"""Read-ahead on several connections: the same pages, in the same order, as on one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from lufy.eventstore import ANY, Checkpoint, Event, EventCodec, EventStore, NewEvent
from lufy.eventstore.readahead import parallel_pages
from lufy.eventstore.reading import RawPage


class Counted(Event, frozen=True, tag="test.counted"):
    n: int


class Skipped(Event, frozen=True, tag="test.skipped"):
    n: int


@pytest.fixture
async def more_conns(settings) -> AsyncIterator[list[psycopg.AsyncConnection[Any]]]:
    conns = [
        await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
        for _ in range(2)
    ]
    yield conns
    for conn in conns:
        await conn.close()


async def _pages(
    store: EventStore, conn: Any, more: list[Any], start: Checkpoint, **kw: Any
) -> list[RawPage]:
    return [raw async for raw in store.pages_ahead(conn, start, more=more, **kw)]


@pytest.mark.parametrize("types", [None, ["test.counted"]], ids=["all", "typed"])
async def test_pages_built_on_several_connections_are_the_pages_one_connection_reads(
    app_conn, more_conns, types: list[str] | None
) -> None:
    store = EventStore(EventCodec([Counted, Skipped]))
    for i in range(0, 61, 3):
        batch = [NewEvent(event=(Counted if k % 4 else Skipped)(n=i + k)) for k in range(3)]
        await store.append(app_conn, "c", str(i % 5), batch, expected=ANY)
    first = await store.fetch_page(app_conn, Checkpoint.START, limit=4, types=types)
    assert first.full
    # 10,000 pages of 4: page_bounds' LIMIT of 40,000 overflowed smallint parameters once.
    for pages in (2, 30, 10_000):
        kw = {"limit": 4, "pages": pages, "barrier": first.barrier, "types": types}
        one = await _pages(store, app_conn, [], first.checkpoint, **kw)
        several = await _pages(store, app_conn, more_conns, first.checkpoint, **kw)
        assert [(r.after, r.count, r.last, r.full) for r in several] == [
            (r.after, r.count, r.last, r.full) for r in one
        ]
        decoded = [await store.decode_page(app_conn, raw) for raw in several]
        expected = [await store.decode_page(app_conn, raw) for raw in one]
        # (`pending` is whatever each read's snapshot saw; the events and checkpoints are fixed.)
        assert [(p.events, p.checkpoint) for p in decoded] == [
            (p.events, p.checkpoint) for p in expected
        ]
    # The long read-ahead ends below the barrier with a short page, on both.
    assert not several[-1].full
    assert decoded[-1].checkpoint == Checkpoint(first.barrier, 0)
    seen = [e.data for page in decoded for e in page.events]
    assert all(isinstance(d, Counted) for d in seen) or types is None


@pytest.mark.parametrize("connections", [1, 2])
async def test_a_read_ahead_to_the_barrier_is_every_page_one_connection_reads(
    app_conn, more_conns, connections: int
) -> None:
    store = EventStore(EventCodec([Counted, Skipped]))
    for i in range(0, 61, 3):
        batch = [NewEvent(event=Counted(n=i + k)) for k in range(3)]
        await store.append(app_conn, "c", str(i % 5), batch, expected=ANY)
    first = await store.fetch_page(app_conn, Checkpoint.START, limit=4)
    assert first.full
    # One page after the other on one connection, below the same barrier, to the short page.
    expected: list[RawPage] = []
    after = first.checkpoint
    while True:
        raw = await store.fetch_page(app_conn, after, limit=4, barrier=first.barrier)
        expected.append(raw)
        if not raw.full:
            break
        after = raw.checkpoint
    # Where the pages end is read 2 or 3 pages at a time: many such reads, chained.
    for pages in (2, 3):
        got = [
            raw
            async for raw in parallel_pages(
                store,
                more_conns[:connections],
                first.checkpoint,
                limit=4,
                pages=pages,
                barrier=first.barrier,
                types=None,
                to_barrier=True,
            )
        ]
        assert [(r.after, r.count, r.last) for r in got] == [
            (r.after, r.count, r.last) for r in expected
        ]
    assert len(expected) > 6
    assert not expected[-1].full
