"""Following the log: woken by NOTIFY, and still complete without it (polling)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from lufy.eventstore import (
    ANY,
    Checkpoint,
    Event,
    EventCodec,
    EventStore,
    NewEvent,
    Notifier,
    Subscription,
)
from lufy.eventstore.envelope import RecordedEvent
from lufy.operations.events import ProjectionRebuilt

HOUR = 3600.0


class Noted(Event, frozen=True, tag="test.noted"):
    text: str


@pytest.fixture
def store() -> EventStore:
    return EventStore(EventCodec([Noted]))


def noted(text: str) -> NewEvent:
    return NewEvent(event=Noted(text=text))


class Observed(Subscription):
    """Records when it goes to sleep for the long poll interval."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asleep = asyncio.Event()

    async def _sleep(self, seconds: float) -> None:
        if seconds >= self.poll_interval:
            self.asleep.set()
        try:
            await super()._sleep(seconds)
        finally:
            self.asleep.clear()


class Deaf(Subscription):
    """A subscription whose LISTEN connection never hears anything."""

    async def _listen(self) -> None:
        await self._stopped.wait()


class Consumer:
    def __init__(self, subscription: Subscription, conn: psycopg.AsyncConnection[Any]) -> None:
        self.subscription = subscription
        self.events: list[RecordedEvent] = []
        self.checkpoints: list[Checkpoint] = []
        self.arrived = asyncio.Condition()
        self.task = asyncio.create_task(self._run(conn))

    async def _run(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for page in self.subscription.pages(conn):
            async with self.arrived:
                self.events.extend(page.events)
                self.checkpoints.append(page.checkpoint)
                self.arrived.notify_all()

    async def wait_for(self, count: int) -> None:
        # Bounds a hang only; the assertions are about what arrives, never how fast.
        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.events) >= count)

        await asyncio.wait_for(enough(), timeout=150)

    async def stop(self) -> None:
        self.subscription.stop()
        await asyncio.wait_for(self.task, timeout=30)


@pytest.fixture
async def reader_conn(settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    yield conn
    await conn.close()


async def _append_alone(store: EventStore, conn: psycopg.AsyncConnection[Any], n: int) -> None:
    await store.append(conn, "note", "a", [noted(str(i)) for i in range(n)], expected=ANY)


async def _append_in_transaction(
    store: EventStore, conn: psycopg.AsyncConnection[Any], n: int
) -> None:
    async with conn.transaction():
        await store.append(conn, "note", "a", [noted(str(i)) for i in range(n)], expected=ANY)


async def _bulk_alone(store: EventStore, conn: psycopg.AsyncConnection[Any], n: int) -> None:
    items = [NewEvent(event=Noted(text=str(i)), stream_type="l", stream_id="x") for i in range(n)]
    await store.append_bulk(conn, items)


async def _bulk_in_transaction(
    store: EventStore, conn: psycopg.AsyncConnection[Any], n: int
) -> None:
    async with conn.transaction():
        await _bulk_alone(store, conn, n)


@pytest.mark.parametrize(
    "write", [_append_alone, _append_in_transaction, _bulk_alone, _bulk_in_transaction]
)
async def test_a_sleeping_subscription_is_woken_by_notify(
    settings, app_conn, reader_conn, store: EventStore, write: Any
) -> None:
    # It would otherwise sleep for an hour: only the NOTIFY of the write can wake it.
    subscription = Observed(store, settings.DATABASE_URL, poll_interval=HOUR)
    consumer = Consumer(subscription, reader_conn)
    await asyncio.wait_for(subscription.listening.wait(), timeout=30)
    await asyncio.wait_for(subscription.asleep.wait(), timeout=30)
    assert consumer.events == []

    await write(store, app_conn, 1)
    await consumer.wait_for(1)
    await asyncio.wait_for(subscription.asleep.wait(), timeout=30)
    await write(store, app_conn, 2)
    await consumer.wait_for(3)
    await consumer.stop()
    cur = await app_conn.execute("SELECT global_position FROM lufy.events ORDER BY 1")
    assert [e.global_position for e in consumer.events] == [r[0] for r in await cur.fetchall()]


async def test_a_subscription_that_hears_no_notify_still_finds_events_by_polling(
    settings, app_conn, admin_conn, reader_conn, store: EventStore
) -> None:
    subscription = Deaf(store, settings.DATABASE_URL, poll_interval=0.05)
    consumer = Consumer(subscription, reader_conn)
    first = await store.append(app_conn, "note", "a", [noted("one")], expected=ANY)
    # Written by another tool: a plain INSERT sends no NOTIFY at all.
    cur = await admin_conn.execute(
        "INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data) "
        "VALUES (%s, 'note', 'raw', 'test.noted', '{\"text\": \"raw\"}') "
        "RETURNING global_position",
        [uuid.uuid4()],
    )
    row = await cur.fetchone()
    assert row is not None
    await consumer.wait_for(2)
    await consumer.stop()
    assert [e.global_position for e in consumer.events] == [first.positions[0], row[0]]
    assert consumer.events[1].data == Noted(text="raw")


async def test_a_woken_subscription_keeps_looking_while_events_are_held_back(
    settings, app_conn, reader_conn, store: EventStore
) -> None:
    holder = await psycopg.AsyncConnection.connect(settings.DATABASE_URL)
    try:
        # An open transaction (it wrote nothing to the log) holds the barrier below the
        # append, whose NOTIFY then finds nothing readable.
        await holder.execute("SELECT pg_current_xact_id()")
        subscription = Observed(store, settings.DATABASE_URL, poll_interval=HOUR)
        consumer = Consumer(subscription, reader_conn)
        await asyncio.wait_for(subscription.listening.wait(), timeout=30)
        await asyncio.wait_for(subscription.asleep.wait(), timeout=30)
        result = await store.append(app_conn, "note", "a", [noted("held")], expected=ANY)
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert consumer.events == []
        # Its commit sends no NOTIFY: the subscription must find the event on its own.
        await holder.commit()
        await consumer.wait_for(1)
        await consumer.stop()
    finally:
        await holder.close()
    assert [e.global_position for e in consumer.events] == result.positions


async def test_a_subscription_resumes_from_a_stored_checkpoint_without_repeats(
    settings, app_conn, reader_conn, store: EventStore
) -> None:
    first = await store.append(
        app_conn, "note", "a", [noted(str(i)) for i in range(5)], expected=ANY
    )
    one = Consumer(Subscription(store, settings.DATABASE_URL, batch_size=2), reader_conn)
    await one.wait_for(5)
    await one.stop()
    stored = one.checkpoints[-1]

    second = await store.append(app_conn, "note", "a", [noted("later")], expected=ANY)
    two = Consumer(
        Subscription(store, settings.DATABASE_URL, after=stored, batch_size=2), reader_conn
    )
    await two.wait_for(1)
    await two.stop()
    assert [e.global_position for e in one.events] == first.positions
    assert [e.global_position for e in two.events] == second.positions


@pytest.mark.parametrize("started", [True, False], ids=["notifier", "notifier-not-started"])
async def test_a_store_with_a_notifier_wakes_sleeping_readers_after_its_commits(
    settings, app_conn, reader_conn, started: bool
) -> None:
    notifier = Notifier(settings.DATABASE_URL)
    if started:
        await notifier.start()
    store = EventStore(EventCodec([Noted]), notifier=notifier)
    subscription = Observed(store, settings.DATABASE_URL, poll_interval=HOUR)
    consumer = Consumer(subscription, reader_conn)
    try:
        await asyncio.wait_for(subscription.listening.wait(), timeout=30)
        await asyncio.wait_for(subscription.asleep.wait(), timeout=30)
        for i in range(30):
            await store.append(app_conn, "note", "a", [noted(str(i))], expected=ANY)
        await consumer.wait_for(30)
        await asyncio.wait_for(subscription.asleep.wait(), timeout=30)
        await _bulk_alone(store, app_conn, 5)
        await consumer.wait_for(35)
    finally:
        await consumer.stop()
        await notifier.stop()
    assert len({e.event_id for e in consumer.events}) == 35
    if started:
        # Bursts are merged: never more NOTIFYs than commits, at least one after the last.
        assert 1 <= notifier.sent <= 31
    else:
        assert notifier.sent == 0  # the store sent them itself


async def test_lufy_events_tail_prints_committed_events_as_json_lines(
    settings, app_conn, tmp_path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LUFY_"))},
        "DATABASE_URL": settings.DATABASE_URL,
        "DATABASE_ADMIN_URL": settings.DATABASE_ADMIN_URL,
        "LUFY_ENV": "test",
    }
    store = EventStore()  # the default codec: the tail decodes with it
    first = ProjectionRebuilt(projection="before", version=1, events_applied=1)
    await store.append(app_conn, "operations", "t", [NewEvent(event=first)], expected=ANY)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lufy.cli",
        "events",
        "tail",
        "--from-start",
        "--type",
        "operations.projection_rebuilt",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=150)
        assert json.loads(line)["data"]["projection"] == "before"
        second = ProjectionRebuilt(projection="after", version=2, events_applied=2)
        await store.append(app_conn, "operations", "t", [NewEvent(event=second)], expected=ANY)
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=150)
        printed = json.loads(line)
        assert printed["data"]["projection"] == "after"
        assert printed["type"] == "operations.projection_rebuilt"
        assert printed["stream"] == "operations/t"
    finally:
        proc.terminate()
        await proc.wait()
