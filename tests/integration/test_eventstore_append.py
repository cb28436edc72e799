"""Appending to the log: expected versions, idempotency, validation, concurrent writers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from lufy.errors import (
    ConcurrencyError,
    DuplicateEventError,
    UnknownEventTypeError,
    ValidationFailedError,
)
from lufy.eventstore import ANY, NO_STREAM, Event, EventCodec, EventStore, NewEvent
from lufy.eventstore.envelope import EventMetadata


class Noted(Event, frozen=True, tag="test.noted"):
    text: str
    n: int = 0


class Unregistered(Event, frozen=True, tag="test.unregistered"):
    text: str


@pytest.fixture
def store() -> EventStore:
    return EventStore(EventCodec([Noted]))


def noted(text: str, n: int = 0, event_id: uuid.UUID | None = None) -> NewEvent:
    return NewEvent(event=Noted(text=text, n=n), event_id=event_id or uuid.uuid4())


async def count_events(conn: psycopg.AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT count(*) FROM lufy.events")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def versions(conn: psycopg.AsyncConnection[Any], stream_id: str) -> list[int]:
    cur = await conn.execute(
        "SELECT stream_version FROM lufy.events WHERE stream_type = 'note' AND stream_id = %s "
        "ORDER BY global_position",
        [stream_id],
    )
    return [r[0] for r in await cur.fetchall()]


# --- expected versions ----------------------------------------------------------------------------


async def test_no_stream_creates_a_stream_numbered_from_one(app_conn, store: EventStore) -> None:
    result = await store.append(app_conn, "note", "a", [noted("x"), noted("y")], expected=NO_STREAM)
    assert result.stream_version == 2
    assert not result.idempotent_replay
    assert await versions(app_conn, "a") == [1, 2]
    assert await store.stream_version(app_conn, "note", "a") == 2


async def test_no_stream_is_refused_when_the_stream_exists(app_conn, store: EventStore) -> None:
    await store.append(app_conn, "note", "a", [noted("x")], expected=NO_STREAM)
    with pytest.raises(ConcurrencyError, match="already exists"):
        await store.append(app_conn, "note", "a", [noted("y")], expected=NO_STREAM)
    assert await versions(app_conn, "a") == [1]


async def test_expected_version_zero_means_the_stream_does_not_exist(
    app_conn, store: EventStore
) -> None:
    await store.append(app_conn, "note", "a", [noted("x")], expected=0)
    with pytest.raises(ConcurrencyError):
        await store.append(app_conn, "note", "a", [noted("y")], expected=0)
    assert await versions(app_conn, "a") == [1]


async def test_an_exact_version_appends_only_at_that_version(app_conn, store: EventStore) -> None:
    await store.append(app_conn, "note", "a", [noted("1"), noted("2")], expected=NO_STREAM)
    result = await store.append(app_conn, "note", "a", [noted("3")], expected=2)
    assert result.stream_version == 3
    for stale in (1, 2, 4, 99):
        with pytest.raises(ConcurrencyError, match="not at version"):
            await store.append(app_conn, "note", "a", [noted("late")], expected=stale)
    assert await versions(app_conn, "a") == [1, 2, 3]


async def test_an_exact_version_of_a_missing_stream_is_a_conflict(
    app_conn, store: EventStore
) -> None:
    with pytest.raises(ConcurrencyError):
        await store.append(app_conn, "note", "ghost", [noted("x")], expected=3)
    assert await count_events(app_conn) == 0


async def test_any_appends_whatever_the_version(app_conn, store: EventStore) -> None:
    first = await store.append(app_conn, "note", "a", [noted("1")], expected=ANY)
    second = await store.append(app_conn, "note", "a", [noted("2"), noted("3")], expected=ANY)
    assert (first.stream_version, second.stream_version) == (1, 3)
    assert await versions(app_conn, "a") == [1, 2, 3]


async def test_a_negative_expected_version_is_a_programming_error(
    app_conn, store: EventStore
) -> None:
    with pytest.raises(ValueError, match="expected version"):
        await store.append(app_conn, "note", "a", [noted("x")], expected=-5)


async def test_a_conflict_inside_a_transaction_writes_nothing_of_the_batch(
    app_conn, store: EventStore
) -> None:
    await store.append(app_conn, "note", "a", [noted("1")], expected=NO_STREAM)

    async def two_appends() -> None:
        async with app_conn.transaction():
            await store.append(app_conn, "note", "b", [noted("other stream")], expected=NO_STREAM)
            await store.append(app_conn, "note", "a", [noted("2"), noted("3")], expected=0)

    with pytest.raises(ConcurrencyError):
        await two_appends()
    assert await count_events(app_conn) == 1
    assert await store.stream_version(app_conn, "note", "b") == 0


async def test_positions_and_metadata_are_returned_and_stored(app_conn, store: EventStore) -> None:
    meta = EventMetadata(correlation_id="c-1", causation_id="k-1", actor_id="u-1", request_id="r")
    item = NewEvent(event=Noted(text="x"), metadata=meta)
    result = await store.append(app_conn, "note", "a", [item], expected=NO_STREAM)
    [read] = await store.read_stream(app_conn, "note", "a")
    assert read.global_position == result.positions[0]
    assert read.transaction_id == result.transaction_id
    assert read.metadata == meta
    assert read.event_id == item.event_id


# --- idempotency ------------------------------------------------------------------------------


async def test_re_appending_the_same_events_returns_the_original_positions(
    app_conn, store: EventStore
) -> None:
    batch = [noted("1"), noted("2")]
    first = await store.append(app_conn, "note", "a", batch, expected=NO_STREAM)
    # The retry carries the caller's original expectation, which is now stale: still a replay.
    again = await store.append(app_conn, "note", "a", batch, expected=NO_STREAM)
    assert again.positions == first.positions
    assert again.stream_version == first.stream_version
    assert again.idempotent_replay
    for expected in (ANY, 0, 2, 7):
        replay = await store.append(app_conn, "note", "a", batch, expected=expected)
        assert replay.positions == first.positions
    assert await count_events(app_conn) == 2
    assert await store.stream_version(app_conn, "note", "a") == 2


async def test_a_replay_inside_a_transaction_does_not_abort_it(app_conn, store: EventStore) -> None:
    item = noted("1")
    first = await store.append(app_conn, "note", "a", [item], expected=NO_STREAM)
    async with app_conn.transaction():
        again = await store.append(app_conn, "note", "a", [item], expected=NO_STREAM)
        more = await store.append(app_conn, "note", "a", [noted("2")], expected=1)
    assert again.positions == first.positions
    assert more.stream_version == 2


async def test_reusing_an_event_id_for_a_different_payload_is_refused(
    app_conn, store: EventStore
) -> None:
    event_id = uuid.uuid4()
    await store.append(app_conn, "note", "a", [noted("x", event_id=event_id)], expected=NO_STREAM)
    with pytest.raises(DuplicateEventError):
        await store.append(app_conn, "note", "a", [noted("y", event_id=event_id)], expected=ANY)
    with pytest.raises(DuplicateEventError):  # same payload, another stream
        await store.append(app_conn, "note", "b", [noted("x", event_id=event_id)], expected=ANY)
    with pytest.raises(DuplicateEventError):  # one known id among new ones
        await store.append(
            app_conn, "note", "a", [noted("z"), noted("x", event_id=event_id)], expected=ANY
        )
    assert await count_events(app_conn) == 1
    assert await store.stream_version(app_conn, "note", "a") == 1


async def test_concurrent_appends_of_the_same_event_write_it_once(
    settings, app_conn, store: EventStore
) -> None:
    item = noted("once")
    conns = [
        await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
        for _ in range(8)
    ]
    try:
        results = await asyncio.gather(
            *(store.append(c, "note", "a", [item], expected=ANY) for c in conns),
            return_exceptions=True,
        )
    finally:
        for c in conns:
            await c.close()
    positions = {r.positions[0] for r in results if not isinstance(r, BaseException)}
    errors = [r for r in results if isinstance(r, BaseException)]
    # Every writer either saw the event written once or was told to retry; never two copies.
    assert all(isinstance(e, ConcurrencyError) for e in errors)
    assert len(positions) == 1
    assert await versions(app_conn, "a") == [1]


# --- validation before writing ------------------------------------------------------------------


async def test_an_unknown_event_type_is_rejected_before_anything_is_written(
    app_conn, store: EventStore
) -> None:
    batch = [noted("fine"), NewEvent(event=Unregistered(text="?"))]
    with pytest.raises(UnknownEventTypeError):
        await store.append(app_conn, "note", "a", batch, expected=ANY)
    bulk = [
        NewEvent(event=Noted(text="fine"), stream_type="note", stream_id="b"),
        NewEvent(event=Unregistered(text="?"), stream_type="note", stream_id="b"),
    ]
    with pytest.raises(UnknownEventTypeError):
        await store.append_bulk(app_conn, bulk)
    assert await count_events(app_conn) == 0
    assert await store.stream_version(app_conn, "note", "a") == 0


async def test_a_payload_that_does_not_match_its_schema_is_rejected_before_writing(
    app_conn, store: EventStore
) -> None:
    # msgspec does not type-check a Struct when it is constructed; the codec must.
    bad = Noted(text=123, n="many")  # type: ignore[arg-type]
    with pytest.raises(ValidationFailedError, match=r"test\.noted"):
        await store.append(app_conn, "note", "a", [noted("ok"), NewEvent(event=bad)], expected=ANY)
    with pytest.raises(ValidationFailedError):
        await store.append_bulk(app_conn, [NewEvent(event=bad, stream_type="note", stream_id="b")])
    assert await count_events(app_conn) == 0


def test_an_untrusted_payload_is_validated_against_its_struct() -> None:
    codec = EventCodec([Noted])
    assert codec.validate("test.noted", {"text": "hi", "n": 2}) == Noted(text="hi", n=2)
    with pytest.raises(ValidationFailedError, match=r"\$\.n"):
        codec.validate("test.noted", {"text": "hi", "n": "two"})
    with pytest.raises(UnknownEventTypeError):
        codec.validate("test.nope", {"text": "hi"})


# --- jsonb objects on every write path ----------------------------------------------------------


async def test_every_write_path_stores_data_and_metadata_as_json_objects(
    app_conn, store: EventStore
) -> None:
    meta = EventMetadata(correlation_id="c", extra={"k": [1, 2]})
    await store.append(
        app_conn, "note", "a", [NewEvent(event=Noted(text="one"), metadata=meta)], expected=ANY
    )
    await store.append(app_conn, "note", "a", [noted(str(i)) for i in range(3)], expected=1)
    await store.append_bulk(
        app_conn,
        [
            NewEvent(event=Noted(text=f"b{i}", n=i), stream_type="note", stream_id=f"bulk-{i}")
            for i in range(5)
        ],
    )
    cur = await app_conn.execute(
        "SELECT jsonb_typeof(data), jsonb_typeof(metadata), data->>'text', count(*) OVER () "
        "FROM lufy.events ORDER BY global_position"
    )
    rows = await cur.fetchall()
    assert len(rows) == 9
    assert {(r[0], r[1]) for r in rows} == {("object", "object")}
    assert [r[2] for r in rows] == ["one", "0", "1", "2", "b0", "b1", "b2", "b3", "b4"]


async def test_the_table_itself_refuses_a_json_string_as_data(admin_conn) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        await admin_conn.execute(
            "INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data) "
            "VALUES (gen_random_uuid(), 'note', 'a', 'test.noted', to_jsonb('{\"a\":1}'::text))"
        )


# --- the bulk path -----------------------------------------------------------------------------


async def test_bulk_append_is_idempotent_by_event_id(app_conn, store: EventStore) -> None:
    items = [
        NewEvent(event=Noted(text=str(i)), stream_type="listener", stream_id=f"l{i % 3}")
        for i in range(10)
    ]
    first = await store.append_bulk(app_conn, items)
    assert sorted(first.inserted) == sorted(i.event_id for i in items)
    assert first.duplicates == []
    extra = NewEvent(event=Noted(text="new"), stream_type="listener", stream_id="l0")
    second = await store.append_bulk(app_conn, [*items[:4], extra, extra])
    assert second.inserted == [extra.event_id]
    assert sorted(second.duplicates) == sorted([*(i.event_id for i in items[:4]), extra.event_id])
    assert await count_events(app_conn) == 11
    cur = await app_conn.execute("SELECT count(*) FROM lufy.events WHERE stream_version IS NULL")
    assert (await cur.fetchone()) == (11,)


async def test_bulk_append_needs_a_stream_for_every_event(app_conn, store: EventStore) -> None:
    with pytest.raises(ValueError, match="stream_type and stream_id"):
        await store.append_bulk(app_conn, [NewEvent(event=Noted(text="x"))])
    assert await count_events(app_conn) == 0


async def test_concurrent_bulk_batches_sharing_ids_write_each_event_once(
    settings, app_conn, store: EventStore
) -> None:
    shared = [
        NewEvent(event=Noted(text=f"s{i}"), stream_type="listener", stream_id="l")
        for i in range(200)
    ]
    conns = [
        await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
        for _ in range(4)
    ]
    try:
        results = await asyncio.gather(*(store.append_bulk(c, shared) for c in conns))
    finally:
        for c in conns:
            await c.close()
    inserted = [i for r in results for i in r.inserted]
    assert sorted(inserted) == sorted(e.event_id for e in shared)
    assert await count_events(app_conn) == 200


# --- eight writers, one stream --------------------------------------------------------------------


async def test_eight_writers_with_the_same_expected_version_yield_one_winner_per_version(
    settings, app_conn, store: EventStore
) -> None:
    writers = 8
    rounds = 15
    conns = [
        await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
        for _ in range(writers)
    ]
    winners: list[int] = []
    try:
        for version in range(rounds):
            results = await asyncio.gather(
                *(
                    store.append(c, "note", "hot", [noted(f"w{w}", version)], expected=version)
                    for w, c in enumerate(conns)
                ),
                return_exceptions=True,
            )
            won = [w for w, r in enumerate(results) if not isinstance(r, BaseException)]
            lost = [r for r in results if isinstance(r, BaseException)]
            assert len(won) == 1, results
            assert all(isinstance(e, ConcurrencyError) for e in lost), lost
            winners.append(won[0])
    finally:
        for c in conns:
            await c.close()
    events = await store.read_stream(app_conn, "note", "hot")
    assert [e.stream_version for e in events] == list(range(1, rounds + 1))
    assert [e.data.n for e in events] == list(range(rounds))  # type: ignore[attr-defined]
    assert [e.data.text for e in events] == [f"w{w}" for w in winners]  # type: ignore[attr-defined]
    assert await store.stream_version(app_conn, "note", "hot") == rounds


async def test_eight_writers_retrying_on_conflict_leave_no_gap_and_no_duplicate_version(
    settings, app_conn, store: EventStore
) -> None:
    per_writer = 12
    conflicts = 0

    async def writer(w: int) -> None:
        nonlocal conflicts
        async with await psycopg.AsyncConnection.connect(
            settings.DATABASE_URL, autocommit=True
        ) as conn:
            for i in range(per_writer):
                while True:
                    current = await store.stream_version(conn, "note", "hot")
                    try:
                        await store.append(
                            conn, "note", "hot", [noted(f"w{w}-{i}")], expected=current
                        )
                        break
                    except ConcurrencyError:
                        conflicts += 1

    await asyncio.gather(*(writer(w) for w in range(8)))
    events = await store.read_stream(app_conn, "note", "hot")
    assert [e.stream_version for e in events] == list(range(1, 8 * per_writer + 1))
    texts = sorted(e.data.text for e in events)  # type: ignore[attr-defined]
    assert texts == sorted(f"w{w}-{i}" for w in range(8) for i in range(per_writer))
    # Each writer appends in its own order, whatever the interleaving.
    for w in range(8):
        mine = [e.data.text for e in events if e.data.text.startswith(f"w{w}-")]  # type: ignore[attr-defined]
        assert mine == [f"w{w}-{i}" for i in range(per_writer)]
