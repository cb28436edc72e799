"""Catching up: pages read ahead below an older barrier, still gap-free and exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from lufy.eventstore import ANY, Checkpoint, Event, EventCodec, EventStore, NewEvent, Subscription
from lufy.eventstore.envelope import RecordedEvent
from lufy.eventstore.postgres import Page


class Noted(Event, frozen=True, tag="test.noted"):
    text: str


class Other(Event, frozen=True, tag="test.other"):
    text: str


@pytest.fixture
def store() -> EventStore:
    return EventStore(EventCodec([Noted, Other]))


@pytest.fixture
async def reader_conn(settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    yield conn
    await conn.close()


async def _fill(store: EventStore, conn: psycopg.AsyncConnection[Any], n: int) -> list[int]:
    """`n` events in transactions of 1 to 9 events, alternating types, with awkward text."""
    positions: list[int] = []
    i = 0
    while i < n:
        size = min(n - i, 1 + i % 9)
        batch = [
            NewEvent(
                event=(Noted if (i + k) % 3 else Other)(text=f'{i + k} "q" \\ \n é'),
            )
            for k in range(size)
        ]
        result = await store.append(conn, "note", f"s{i % 4}", batch, expected=ANY)
        positions.extend(result.positions)
        i += size
    return positions


async def _follow(
    subscription: Subscription, conn: psycopg.AsyncConnection[Any], count: int
) -> list[RecordedEvent]:
    got: list[RecordedEvent] = []

    async def run() -> None:
        async for page in subscription.pages(conn):
            got.extend(page.events)
            if len(got) >= count:
                subscription.stop()

    await asyncio.wait_for(run(), timeout=150)  # bounds a hang only
    return got


# A read-ahead reads `read_ahead_events` at once (rounded down to whole pages) and hands them out
# as pages of `batch_size`: one page per query, three, or everything left in one query.
@pytest.mark.parametrize("ahead", [7, 23, 5000])
async def test_a_catch_up_over_many_read_aheads_delivers_every_event_once_in_order(
    settings, app_conn, reader_conn, store: EventStore, ahead: int
) -> None:
    positions = await _fill(store, app_conn, 230)
    sub = Subscription(
        store, settings.DATABASE_URL, batch_size=7, read_ahead_pages=3, read_ahead_events=ahead
    )
    pages: list[Page] = []

    async def run() -> None:
        async for page in sub.pages(reader_conn):
            pages.append(page)
            if sum(len(p.events) for p in pages) >= 230:
                sub.stop()

    await asyncio.wait_for(run(), timeout=150)  # bounds a hang only
    got = [e for page in pages for e in page.events]
    assert [e.global_position for e in got] == positions
    # Pages of 7 (230 = 32 * 7 + 6), each ending at its last event.
    assert [len(p.events) for p in pages] == [7] * 32 + [6]
    assert all(p.checkpoint == p.events[-1].checkpoint for p in pages[:-1])
    assert got[0].data == Other(text='0 "q" \\ \n é')
    assert got[1].data == Noted(text='1 "q" \\ \n é')


async def test_a_type_filtered_catch_up_streams_only_its_types(
    settings, app_conn, reader_conn, store: EventStore
) -> None:
    await _fill(store, app_conn, 120)
    everything = await store.read_all(app_conn, limit=1000)
    wanted = [e.global_position for e in everything.events if e.type == "test.other"]
    sub = Subscription(
        store, settings.DATABASE_URL, batch_size=4, read_ahead_pages=2, types=["test.other"]
    )
    got = await _follow(sub, reader_conn, len(wanted))
    assert [e.global_position for e in got] == wanted


async def test_events_committed_during_a_catch_up_are_delivered_after_it(
    settings, app_conn, reader_conn, store: EventStore
) -> None:
    before = await _fill(store, app_conn, 60)
    sub = Subscription(store, settings.DATABASE_URL, batch_size=5, read_ahead_pages=2)
    got: list[RecordedEvent] = []
    later: list[int] = []

    async def run() -> None:
        async for page in sub.pages(reader_conn):
            got.extend(page.events)
            if len(got) == 10 and not later:
                # Written while the reader is reading ahead below an older barrier.
                result = await store.append(
                    app_conn, "note", "late", [NewEvent(event=Noted(text="late"))], expected=0
                )
                later.extend(result.positions)
            if len(got) >= 61:
                sub.stop()

    await asyncio.wait_for(run(), timeout=150)
    assert [e.global_position for e in got] == before + later


@pytest.mark.parametrize("ahead", [5, 15, 5000])
async def test_a_checkpoint_moved_by_the_caller_drops_the_read_ahead(
    settings, app_conn, reader_conn, store: EventStore, ahead: int
) -> None:
    positions = await _fill(store, app_conn, 40)
    sub = Subscription(
        store, settings.DATABASE_URL, batch_size=5, read_ahead_pages=4, read_ahead_events=ahead
    )
    got: list[RecordedEvent] = []
    rewound = False

    async def run() -> None:
        nonlocal rewound
        async for page in sub.pages(reader_conn):
            got.extend(page.events)
            if len(got) == 15 and not rewound:
                # As the projection runner does when its checkpoint was moved elsewhere.
                rewound = True
                sub.checkpoint = got[4].checkpoint
            if len(got) >= 15 + 35:
                sub.stop()

    await asyncio.wait_for(run(), timeout=150)
    assert [e.global_position for e in got] == positions[:15] + positions[5:]


async def test_pages_ahead_stop_at_their_count_or_at_the_barrier(
    app_conn, store: EventStore
) -> None:
    positions = await _fill(store, app_conn, 30)
    first = await store.fetch_page(app_conn, Checkpoint.START, limit=5)
    assert first.full
    pages = [
        raw
        async for raw in store.pages_ahead(
            app_conn, first.checkpoint, limit=5, pages=2, barrier=first.barrier
        )
    ]
    assert [raw.count for raw in pages] == [5, 5]
    decoded = [await store.decode_page(app_conn, raw) for raw in pages]
    assert [e.global_position for p in decoded for e in p.events] == positions[5:15]
    assert decoded[-1].checkpoint == decoded[-1].events[-1].checkpoint

    rest = [
        raw
        async for raw in store.pages_ahead(
            app_conn, decoded[-1].checkpoint, limit=5, pages=10, barrier=first.barrier
        )
    ]
    # Below the barrier the page came with, the last 15 events, then a short page that says
    # everything below it was read.
    assert [raw.count for raw in rest] == [5, 5, 5, 0]
    end = await store.decode_page(app_conn, rest[-1])
    assert end.checkpoint == Checkpoint(first.barrier, 0)
