"""An append that commits alone leaves used event ids to the unique index (no probe): a used id
fails the statement, which rolls back whole, and the precise path answers. Inside a caller's
transaction (explicit, or opened implicitly on a connection without autocommit) the ids are
probed, so a replay never aborts that transaction."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import psycopg
import pytest

from lufy.errors import ConcurrencyError, DuplicateEventError
from lufy.eventstore import ANY, NO_STREAM, Event, EventCodec, EventStore, NewEvent
from lufy.eventstore.statements import append_statement


class Said(Event, frozen=True, tag="test.said"):
    text: str


@pytest.fixture
def store() -> EventStore:
    return EventStore(EventCodec([Said]))


def said(text: str, event_id: uuid.UUID | None = None) -> NewEvent:
    return NewEvent(event=Said(text=text), event_id=event_id or uuid.uuid4())


async def rows_of(conn: psycopg.AsyncConnection[Any], stream_id: str) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "SELECT stream_version, data->>'text' FROM lufy.events"
        " WHERE stream_type = 's' AND stream_id = %s ORDER BY stream_version",
        [stream_id],
    )
    return list(await cur.fetchall())


@pytest.mark.parametrize("single", [True, False])
@pytest.mark.parametrize("code", [-2, -1, 0, 3])
def test_only_the_statements_inside_a_transaction_probe_the_ids(code: int, single: bool) -> None:
    probe = b"NOT EXISTS (SELECT 1 FROM lufy.events"
    assert probe in append_statement(code, single=single, in_tx=True)
    assert probe not in append_statement(code, single=single, in_tx=False)


async def test_a_used_id_at_the_expected_version_writes_nothing_and_is_refused(
    app_conn, store: EventStore
) -> None:
    used = uuid.uuid4()
    await store.append(app_conn, "s", "a", [said("one", used)], expected=NO_STREAM)
    await store.append(app_conn, "s", "b", [said("b1")], expected=NO_STREAM)
    # Stream b is at the expected version: the INSERT fails on the event-id index, and the whole
    # statement rolls back (the stream stays at its version).
    for batch in ([said("other", used)], [said("new"), said("other", used)]):
        with pytest.raises(DuplicateEventError):
            await store.append(app_conn, "s", "b", batch, expected=1)
    with pytest.raises(DuplicateEventError):  # a new stream
        await store.append(app_conn, "s", "c", [said("one", used)], expected=NO_STREAM)
    assert await store.stream_version(app_conn, "s", "b") == 1
    assert await store.stream_version(app_conn, "s", "c") == 0
    assert await rows_of(app_conn, "b") == [(1, "b1")]
    result = await store.append(app_conn, "s", "b", [said("b2")], expected=1)
    assert result.stream_version == 2
    assert await rows_of(app_conn, "b") == [(1, "b1"), (2, "b2")]


async def test_a_replay_with_any_answers_the_original_positions(
    app_conn, store: EventStore
) -> None:
    batch = [said("x"), said("y")]
    first = await store.append(app_conn, "s", "a", batch, expected=ANY)
    for _ in range(2):
        again = await store.append(app_conn, "s", "a", batch, expected=ANY)
        assert again.idempotent_replay
        assert again.positions == first.positions
    assert await store.stream_version(app_conn, "s", "a") == 2
    assert await rows_of(app_conn, "a") == [(1, "x"), (2, "y")]


async def test_without_autocommit_a_replay_keeps_the_implicit_transaction_usable(
    settings, app_conn, store: EventStore
) -> None:
    item = said("x")
    first = await store.append(app_conn, "s", "a", [item], expected=NO_STREAM)
    conn = await psycopg.AsyncConnection.connect(settings.DATABASE_URL)
    try:
        for expected in (ANY, 0, 1):
            again = await store.append(conn, "s", "a", [item], expected=expected)
            assert again.positions == first.positions
        more = await store.append(conn, "s", "a", [said("y")], expected=1)
        await conn.commit()
    finally:
        await conn.close()
    assert more.stream_version == 2
    assert await rows_of(app_conn, "a") == [(1, "x"), (2, "y")]


async def test_concurrent_writers_of_one_event_at_one_version_write_it_once(
    settings, app_conn, store: EventStore
) -> None:
    await store.append(app_conn, "s", "a", [said("x")], expected=NO_STREAM)
    item = said("once")
    async with contextlib.AsyncExitStack() as stack:
        writers = []
        for _ in range(8):
            conn = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
            writers.append(await stack.enter_async_context(conn))
        appends = [store.append(w, "s", "a", [item], expected=1) for w in writers]
        results = await asyncio.gather(*appends, return_exceptions=True)
    done = [r for r in results if not isinstance(r, BaseException)]
    # One wrote it; the others waited on its version's index entry, failed and were
    # answered by the precise path: the same event, so a replay (never a conflict, never twice).
    assert len(done) == 8, [r for r in results if isinstance(r, BaseException)]
    assert {r.positions[0] for r in done} == {done[0].positions[0]}
    assert sum(not r.idempotent_replay for r in done) == 1
    assert not [r for r in results if isinstance(r, ConcurrencyError)]
    assert await rows_of(app_conn, "a") == [(1, "x"), (2, "once")]
