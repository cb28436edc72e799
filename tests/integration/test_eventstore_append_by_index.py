"""Appends without a per-stream row (sql/0975): a stream's version is the last stream_version of
its events, and the unique index on (stream_type, stream_id, stream_version) makes an expected
version exact. Concurrent ANY writers all append, one after the other; concurrent writers at
one exact version: one writes, the others are refused."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import psycopg
import pytest

from lufy.errors import ConcurrencyError
from lufy.eventstore import ANY, NO_STREAM, Event, EventCodec, EventStore, NewEvent


class Said(Event, frozen=True, tag="test.said_by_index"):
    text: str


@pytest.fixture
def store() -> EventStore:
    return EventStore(EventCodec([Said]))


def said(text: str) -> NewEvent:
    return NewEvent(event=Said(text=text), event_id=uuid.uuid4())


async def versions_of(conn: psycopg.AsyncConnection[Any], stream_id: str) -> list[int]:
    cur = await conn.execute(
        "SELECT stream_version FROM lufy.events"
        " WHERE stream_type = 's' AND stream_id = %s ORDER BY stream_version",
        [stream_id],
    )
    return [v for (v,) in await cur.fetchall()]


async def test_the_streams_table_is_gone_and_the_version_comes_from_the_log(
    app_conn, store: EventStore
) -> None:
    cur = await app_conn.execute("SELECT to_regclass('lufy.streams') IS NULL")
    assert await cur.fetchone() == (True,)
    assert await store.stream_version(app_conn, "s", "a") == 0
    await store.append(app_conn, "s", "a", [said("1"), said("2")], expected=NO_STREAM)
    await store.append(app_conn, "s", "a", [said("3")], expected=2)
    assert await store.stream_version(app_conn, "s", "a") == 3


@pytest.mark.parametrize("expected", [0, NO_STREAM, 1, 3])
async def test_a_version_that_is_not_the_last_is_refused_and_writes_nothing(
    app_conn, store: EventStore, expected: Any
) -> None:
    await store.append(app_conn, "s", "a", [said("1"), said("2")], expected=NO_STREAM)
    with pytest.raises(ConcurrencyError):
        await store.append(app_conn, "s", "a", [said("x"), said("y")], expected=expected)
    assert await versions_of(app_conn, "a") == [1, 2]


@pytest.mark.parametrize("expected", [1, 3, ANY])
async def test_inside_a_transaction_the_probe_refuses_a_taken_version_and_any_appends_after(
    settings, app_conn, store: EventStore, expected: Any
) -> None:
    await store.append(app_conn, "s", "a", [said("1"), said("2")], expected=NO_STREAM)
    async with await psycopg.AsyncConnection.connect(settings.DATABASE_URL) as conn:
        if expected == ANY:
            async with conn.transaction():
                await store.append(conn, "s", "b", [said("b1")], expected=NO_STREAM)
                result = await store.append(conn, "s", "a", [said("3")], expected=ANY)
            assert result.stream_version == 3
        else:
            with pytest.raises(ConcurrencyError):
                async with conn.transaction():
                    await store.append(conn, "s", "a", [said("x")], expected=expected)
    assert await versions_of(app_conn, "a") == ([1, 2, 3] if expected == ANY else [1, 2])


@pytest.mark.parametrize("in_tx", [False, True])
async def test_concurrent_writers_with_any_all_append_one_after_the_other(
    settings, app_conn, store: EventStore, in_tx: bool
) -> None:
    await store.append(app_conn, "s", "a", [said("0")], expected=NO_STREAM)
    async with contextlib.AsyncExitStack() as stack:
        writers = []
        for _ in range(8):
            conn = await psycopg.AsyncConnection.connect(
                settings.DATABASE_URL, autocommit=not in_tx
            )
            writers.append(await stack.enter_async_context(conn))

        async def write(conn: psycopg.AsyncConnection[Any], i: int) -> int:
            results = []
            for j in range(5):
                batch = [said(f"{i}.{j}.{k}") for k in range(1 + (i + j) % 3)]
                results.append(await store.append(conn, "s", "a", batch, expected=ANY))
                if in_tx:
                    await conn.commit()
            return len(results)

        done = await asyncio.gather(*(write(w, i) for i, w in enumerate(writers)))
    assert done == [5] * 8
    total = 1 + sum(1 + (i + j) % 3 for i in range(8) for j in range(5))
    assert await versions_of(app_conn, "a") == list(range(1, total + 1))


async def test_concurrent_writers_at_one_version_one_writes_the_others_are_refused(
    settings, app_conn, store: EventStore
) -> None:
    await store.append(app_conn, "s", "a", [said("0")], expected=NO_STREAM)
    async with contextlib.AsyncExitStack() as stack:
        writers = []
        for _ in range(8):
            conn = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
            writers.append(await stack.enter_async_context(conn))
        appends = [
            store.append(w, "s", "a", [said(f"w{i}"), said(f"w{i}b")], expected=1)
            for i, w in enumerate(writers)
        ]
        results = await asyncio.gather(*appends, return_exceptions=True)
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(done) == 1
    assert all(isinstance(r, ConcurrencyError) for r in results if isinstance(r, BaseException))
    assert await versions_of(app_conn, "a") == [1, 2, 3]
