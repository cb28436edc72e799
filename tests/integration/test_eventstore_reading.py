"""Reading the log: streams, upcasting, and gap-free reading under concurrent writers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import psycopg
import pytest

from lufy.errors import UnknownEventTypeError
from lufy.eventstore import ANY, NO_STREAM, Checkpoint, Event, EventCodec, EventStore, NewEvent
from lufy.eventstore.envelope import RecordedEvent


class Noted(Event, frozen=True, tag="test.noted"):
    text: str
    n: int = 0


class Other(Event, frozen=True, tag="test.other"):
    text: str


HANG = 150.0  # seconds before a reader that sees nothing is declared stuck


@pytest.fixture
def store() -> EventStore:
    return EventStore(EventCodec([Noted, Other]))


def noted(text: str, n: int = 0) -> NewEvent:
    return NewEvent(event=Noted(text=text, n=n))


async def connect(url: str, *, autocommit: bool) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=autocommit)


class Reader:
    """A reader of the whole log that remembers what it was handed and where it stands."""

    def __init__(self, store: EventStore, conn: psycopg.AsyncConnection[Any], limit: int = 1):
        self.store, self.conn, self.limit = store, conn, limit
        self.checkpoint = Checkpoint.START
        self.delivered: list[RecordedEvent] = []
        self.pending = False

    async def step(self) -> int:
        page = await self.store.read_all(self.conn, self.checkpoint, limit=self.limit)
        assert page.checkpoint >= self.checkpoint
        self.checkpoint = page.checkpoint
        self.delivered.extend(page.events)
        self.pending = page.pending
        return len(page.events)

    async def until(self, done: Callable[[], bool], what: str) -> None:
        # An open transaction anywhere on this shared cluster (another suite's) holds the
        # barrier back for as long as it lives; this only bounds a hang, it times nothing.
        deadline = asyncio.get_running_loop().time() + HANG
        while not done():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"reader never got {what}")
            if not await self.step():
                await asyncio.sleep(0.01)

    async def drain(self) -> None:
        """Read until a short page says nothing is held back: then the reader is caught up."""
        deadline = asyncio.get_running_loop().time() + HANG
        while asyncio.get_running_loop().time() < deadline:
            if await self.step() < self.limit and not self.pending:
                return
            if self.pending:
                await asyncio.sleep(0.01)
        raise AssertionError("the reader never caught up")

    def ids(self) -> list[uuid.UUID]:
        return [e.event_id for e in self.delivered]


# --- streams ------------------------------------------------------------------------------------


async def test_a_stream_reads_forward_and_backward_from_a_version(
    app_conn, store: EventStore
) -> None:
    await store.append(app_conn, "note", "a", [noted(str(i)) for i in range(1, 6)], expected=0)
    await store.append(app_conn, "note", "b", [noted("elsewhere")], expected=NO_STREAM)
    forward = await store.read_stream(app_conn, "note", "a")
    assert [e.stream_version for e in forward] == [1, 2, 3, 4, 5]
    assert [e.data for e in forward] == [Noted(text=str(i)) for i in range(1, 6)]
    part = await store.read_stream(app_conn, "note", "a", from_version=3, limit=2)
    assert [e.stream_version for e in part] == [3, 4]
    backward = await store.read_stream(app_conn, "note", "a", backward=True, limit=2)
    assert [e.stream_version for e in backward] == [5, 4]
    back_from = await store.read_stream(app_conn, "note", "a", backward=True, from_version=2)
    assert [e.stream_version for e in back_from] == [2, 1]
    assert await store.read_stream(app_conn, "note", "missing") == []


async def test_read_all_returns_every_committed_event_in_order_across_pages(
    app_conn, store: EventStore
) -> None:
    appended = []
    for i in range(7):
        result = await store.append(app_conn, "note", f"s{i % 3}", [noted(str(i))], expected=ANY)
        appended.extend(result.positions)
    reader = Reader(store, app_conn, limit=3)
    await reader.drain()
    assert [e.global_position for e in reader.delivered] == appended


async def test_a_type_filtered_reader_sees_only_its_types_and_still_advances(
    app_conn, store: EventStore
) -> None:
    await store.append(app_conn, "note", "a", [noted("1")], expected=ANY)
    await store.append(app_conn, "note", "a", [NewEvent(event=Other(text="x"))], expected=ANY)
    await store.append(app_conn, "note", "a", [noted("2")], expected=ANY)
    checkpoint = Checkpoint.START
    seen: list[str] = []
    deadline = asyncio.get_running_loop().time() + HANG
    while not seen and asyncio.get_running_loop().time() < deadline:
        page = await store.read_all(app_conn, checkpoint, types=["test.other"])
        checkpoint = page.checkpoint
        seen.extend(e.type for e in page.events)
        await asyncio.sleep(0.01)
    assert seen == ["test.other"]
    [last] = await store.read_stream(app_conn, "note", "a", backward=True, limit=1)
    assert checkpoint >= last.checkpoint or checkpoint.transaction_id > last.transaction_id


# --- upcasting ---------------------------------------------------------------------------------


class RenamedV1(Event, frozen=True, tag="test.renamed"):
    name: str


class RenamedV2(Event, frozen=True, tag="test.renamed"):
    schema_version: ClassVar[int] = 2
    title: str
    lang: str = "en"


class RenamedV3(Event, frozen=True, tag="test.renamed"):
    schema_version: ClassVar[int] = 3
    title: str
    words: int
    lang: str = "en"


def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return {"title": payload["name"]}


def _v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "words": len(payload["title"].split())}


async def test_old_events_are_upcast_when_read(app_conn) -> None:
    old = EventStore(EventCodec([RenamedV1]))
    await old.append(
        app_conn, "doc", "1", [NewEvent(event=RenamedV1(name="Blue Moon"))], expected=0
    )
    v2 = EventStore(EventCodec([RenamedV2], upcasters={("test.renamed", 1): _v1_to_v2}))
    await v2.append(
        app_conn, "doc", "1", [NewEvent(event=RenamedV2(title="Ok", lang="de"))], expected=1
    )

    [first, second] = await v2.read_stream(app_conn, "doc", "1")
    assert first.data == RenamedV2(title="Blue Moon")
    assert first.schema_version == 1  # the envelope says how it was stored
    assert second.data == RenamedV2(title="Ok", lang="de")

    v3 = EventStore(
        EventCodec(
            [RenamedV3], upcasters={("test.renamed", 1): _v1_to_v2, ("test.renamed", 2): _v2_to_v3}
        )
    )
    reader = Reader(v3, app_conn, limit=10)
    await reader.until(lambda: len(reader.delivered) == 2, "both events")
    assert [e.data for e in reader.delivered] == [
        RenamedV3(title="Blue Moon", words=2),
        RenamedV3(title="Ok", lang="de", words=1),
    ]


async def test_an_old_event_without_an_upcaster_is_an_error_not_a_silent_default(
    app_conn,
) -> None:
    old = EventStore(EventCodec([RenamedV1]))
    await old.append(app_conn, "doc", "1", [NewEvent(event=RenamedV1(name="x"))], expected=0)
    missing = EventStore(EventCodec([RenamedV3], upcasters={("test.renamed", 1): _v1_to_v2}))
    with pytest.raises(UnknownEventTypeError, match="from schema version 2"):
        await missing.read_stream(app_conn, "doc", "1")


# --- gap-free reading --------------------------------------------------------------------------


async def test_an_open_transaction_with_a_lower_position_is_delivered_after_it_commits(
    settings, app_conn, store: EventStore
) -> None:
    early = await connect(settings.DATABASE_URL, autocommit=False)
    late = await connect(settings.DATABASE_URL, autocommit=False)
    try:
        # `late` takes its transaction id first, `early` then writes the lower position:
        # `late` commits and is read while `early` is still open.
        await late.execute("SELECT pg_current_xact_id()")
        a = await store.append(early, "note", "early", [noted("early")], expected=NO_STREAM)
        b = await store.append(late, "note", "late", [noted("late")], expected=NO_STREAM)
        assert a.positions[0] < b.positions[0]
        await late.commit()

        reader = Reader(store, app_conn)
        await reader.until(lambda: len(reader.delivered) == 1, "the committed event")
        assert [e.global_position for e in reader.delivered] == b.positions
        # A position-based reader would now stand past `early` for good.
        assert reader.checkpoint.global_position > a.positions[0]
        for _ in range(5):
            await reader.step()
        assert len(reader.delivered) == 1

        await early.commit()
        await reader.until(lambda: len(reader.delivered) == 2, "the late-committing event")
        await reader.drain()
    finally:
        await early.close()
        await late.close()
    assert [e.global_position for e in reader.delivered] == [b.positions[0], a.positions[0]]


async def test_a_later_commit_waits_behind_an_earlier_open_transaction(
    settings, app_conn, store: EventStore
) -> None:
    first = await connect(settings.DATABASE_URL, autocommit=False)
    try:
        a = await store.append(first, "note", "first", [noted("first")], expected=NO_STREAM)
        b = await store.append(app_conn, "note", "second", [noted("second")], expected=NO_STREAM)
        reader = Reader(store, app_conn)
        for _ in range(5):
            await reader.step()
        # Handing out `second` now would be safe only if `first` could never commit below it.
        assert reader.delivered == []
        assert await store.pending(app_conn)
        await first.commit()
        await reader.until(lambda: len(reader.delivered) == 2, "both events")
        await reader.drain()
    finally:
        await first.close()
    assert [e.global_position for e in reader.delivered] == [a.positions[0], b.positions[0]]


async def test_rolled_back_events_never_appear_and_nothing_is_delivered_twice(
    settings, app_conn, store: EventStore
) -> None:
    doomed = await connect(settings.DATABASE_URL, autocommit=False)
    late = await connect(settings.DATABASE_URL, autocommit=False)
    try:
        await late.execute("SELECT pg_current_xact_id()")
        gone = await store.append(doomed, "note", "doomed", [noted("x"), noted("y")], expected=0)
        kept = await store.append(late, "note", "kept", [noted("kept")], expected=NO_STREAM)
        await late.commit()
        reader = Reader(store, app_conn)
        await reader.until(lambda: len(reader.delivered) == 1, "the committed event")
        await doomed.rollback()
        after = await store.append(app_conn, "note", "after", [noted("after")], expected=ANY)
        await reader.until(lambda: len(reader.delivered) == 2, "the event after the rollback")
        await reader.drain()
    finally:
        await doomed.close()
        await late.close()
    positions = [e.global_position for e in reader.delivered]
    assert positions == [kept.positions[0], after.positions[0]]
    assert not set(gone.positions) & set(positions)
    assert await store.stream_version(app_conn, "note", "doomed") == 0
    # The stream the rollback released can be created again.
    await store.append(app_conn, "note", "doomed", [noted("again")], expected=NO_STREAM)


async def test_many_interleaved_writers_and_rollbacks_are_read_exactly_once(
    settings, app_conn, store: EventStore
) -> None:
    import random

    rng = random.Random(20260125)
    committed: set[uuid.UUID] = set()
    rolled_back: set[uuid.UUID] = set()

    async def writer(w: int) -> None:
        conn = await connect(settings.DATABASE_URL, autocommit=False)
        try:
            for t in range(20):
                batch_ids: list[uuid.UUID] = []
                for k in range(rng.randint(1, 3)):
                    item = noted(f"w{w}t{t}k{k}")
                    await store.append(
                        conn, "note", f"w{w}-{rng.randint(0, 3)}", [item], expected=ANY
                    )
                    batch_ids.append(item.event_id)
                    await asyncio.sleep(rng.random() / 200)
                if rng.random() < 0.25:
                    await conn.rollback()
                    rolled_back.update(batch_ids)
                else:
                    await conn.commit()
                    committed.update(batch_ids)
        finally:
            await conn.close()

    reader = Reader(store, app_conn, limit=5)
    writers = asyncio.gather(*(writer(w) for w in range(4)))
    while not writers.done():
        if not await reader.step():
            await asyncio.sleep(0.002)
    await writers
    await reader.until(lambda: set(reader.ids()) >= committed, "every committed event")
    await reader.drain()
    ids = reader.ids()
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert set(ids) == committed
    assert not set(ids) & rolled_back
    assert rolled_back  # the seed does roll some back
    keys = [(e.transaction_id, e.global_position) for e in reader.delivered]
    assert keys == sorted(keys)
