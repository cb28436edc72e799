"""An append at an exact version that its connection saw committed does not look for the
event at that version in the log (`stream_known`, postgres.py `_known_versions`): the log is
append-only, so the event is still there, and the unique version index keeps the check exact.
What a connection knows comes only from appends that committed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import psycopg
import pytest

from lufy.errors import ConcurrencyError
from lufy.eventstore import NO_STREAM, Event, EventCodec, EventStore, NewEvent
from lufy.eventstore import postgres as store_module
from lufy.eventstore.statements import append_statement

PROBE = b"stream_version = %(expected)s"


class Known(Event, frozen=True, tag="test.known_version"):
    text: str


@pytest.fixture
def store() -> EventStore:
    return EventStore(EventCodec([Known]))


def known(text: str) -> NewEvent:
    return NewEvent(event=Known(text=text), event_id=uuid.uuid4())


async def versions_of(conn: psycopg.AsyncConnection[Any], stream_id: str) -> list[int]:
    cur = await conn.execute(
        "SELECT stream_version FROM lufy.events"
        " WHERE stream_type = 'k' AND stream_id = %s ORDER BY stream_version",
        [stream_id],
    )
    return [v for (v,) in await cur.fetchall()]


@pytest.mark.parametrize("single", [True, False])
def test_the_known_statement_does_not_look_for_the_expected_version(single: bool) -> None:
    assert PROBE in append_statement(3, single=single, in_tx=False)
    assert PROBE not in append_statement(3, single=single, in_tx=False, known=True)
    # NO_STREAM and ANY have no such look; `known` changes nothing for them.
    for code in (-1, 0, -2):
        assert append_statement(code, single=single, in_tx=False, known=True) == (
            append_statement(code, single=single, in_tx=False)
        )


async def test_a_connection_learns_the_versions_it_commits(app_conn, store: EventStore) -> None:
    await store.append(app_conn, "k", "a", [known("1"), known("2")], expected=NO_STREAM)
    await store.append(app_conn, "k", "a", [known("3")], expected=2)
    assert store_module._known_versions(app_conn)[("k", "a")] == 3


@pytest.mark.parametrize("expected", [1, 2])
async def test_a_known_version_that_is_not_the_last_is_refused_and_writes_nothing(
    app_conn, store: EventStore, expected: int
) -> None:
    await store.append(app_conn, "k", "a", [known("1"), known("2"), known("3")], expected=0)
    with pytest.raises(ConcurrencyError):
        await store.append(app_conn, "k", "a", [known("x")], expected=expected)
    with pytest.raises(ConcurrencyError):
        await store.append(app_conn, "k", "a", [known("x"), known("y")], expected=expected)
    assert await versions_of(app_conn, "a") == [1, 2, 3]


async def test_a_version_another_connection_wrote_is_looked_for(
    app_conn, settings, store: EventStore
) -> None:
    await store.append(app_conn, "k", "a", [known("1")], expected=NO_STREAM)
    async with await psycopg.AsyncConnection.connect(
        settings.DATABASE_URL, autocommit=True
    ) as other:
        await store.append(other, "k", "a", [known("2")], expected=1)
        # app_conn knows version 1 only; 2 (written elsewhere) is found in the log.
        await store.append(app_conn, "k", "a", [known("3")], expected=2)
        with pytest.raises(ConcurrencyError):
            await store.append(other, "k", "a", [known("x")], expected=2)
    assert await versions_of(app_conn, "a") == [1, 2, 3]


async def test_versions_written_in_a_transaction_that_rolled_back_are_not_learned(
    app_conn, store: EventStore
) -> None:
    await store.append(app_conn, "k", "a", [known("1")], expected=NO_STREAM)
    with contextlib.suppress(RuntimeError):
        async with app_conn.transaction():
            await store.append(app_conn, "k", "a", [known("2")], expected=1)
            raise RuntimeError("roll back")
    assert store_module._known_versions(app_conn)[("k", "a")] == 1
    # Version 2 does not exist: an append expecting it must not write version 3.
    with pytest.raises(ConcurrencyError):
        await store.append(app_conn, "k", "a", [known("x")], expected=2)
    await store.append(app_conn, "k", "a", [known("2 again")], expected=1)
    assert await versions_of(app_conn, "a") == [1, 2]


async def test_the_known_versions_are_bounded(
    app_conn, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_KNOWN_MAX", 3)
    for n in range(5):
        await store.append(app_conn, "k", f"s{n}", [known("1")], expected=NO_STREAM)
        assert len(store_module._known_versions(app_conn)) <= 3
    # A forgotten stream is looked for again, and still appends.
    await store.append(app_conn, "k", "s0", [known("2")], expected=1)


async def test_eight_writers_that_know_the_version_one_writes(settings, store: EventStore) -> None:
    conns = [
        await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
        for _ in range(8)
    ]
    try:
        # Every connection learns version 1: the first writes it, the others replay it.
        first = known("1")
        for conn in conns:
            await store.append(conn, "k", "race", [first], expected=NO_STREAM)
        assert all(store_module._known_versions(c)[("k", "race")] == 1 for c in conns)
        results = await asyncio.gather(
            *(
                store.append(c, "k", "race", [known(f"w{i}")], expected=1)
                for i, c in enumerate(conns)
            ),
            return_exceptions=True,
        )
        assert await versions_of(conns[0], "race") == [1, 2]
    finally:
        for conn in conns:
            await conn.close()
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert [type(r) for r in results if isinstance(r, BaseException)] == [ConcurrencyError] * 7
