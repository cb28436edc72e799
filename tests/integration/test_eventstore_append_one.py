"""Single-event appends (their own statements): the same versions, checks and NOTIFY as batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from lufy.errors import ConcurrencyError
from lufy.eventstore import ANY, NO_STREAM, Event, EventCodec, EventStore, NewEvent


class Noted(Event, frozen=True, tag="test.noted"):
    text: str


@pytest.fixture
def store() -> EventStore:
    return EventStore(EventCodec([Noted]))


async def _notified(listener: psycopg.AsyncConnection[Any]) -> bool:
    gen = listener.notifies(timeout=20, stop_after=1)  # bounds a hang only
    return [n.channel async for n in gen] == ["lufy_events"]


@pytest.mark.parametrize("in_transaction", [False, True], ids=["alone", "in-transaction"])
async def test_one_event_in_each_mode_is_numbered_checked_and_announced(
    settings, app_conn, store: EventStore, in_transaction: bool
) -> None:
    listener = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    async with listener:
        await listener.execute("LISTEN lufy_events")
        at = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
        steps: list[tuple[Any, int]] = [(NO_STREAM, 1), (1, 2), (ANY, 3), (3, 4)]
        for expected, version in steps:
            event = NewEvent(event=Noted(text=str(version)), occurred_at=at)
            if in_transaction:
                async with app_conn.transaction():
                    result = await store.append(app_conn, "s", "1", [event], expected=expected)
            else:
                result = await store.append(app_conn, "s", "1", [event], expected=expected)
            assert result.stream_version == version
            assert not result.idempotent_replay
            assert await _notified(listener)
            again = await store.append(app_conn, "s", "1", [event], expected=expected)
            assert again.idempotent_replay
            assert again.positions == result.positions

    for stale in (NO_STREAM, 0, 3):
        with pytest.raises(ConcurrencyError):
            await store.append(
                app_conn, "s", "1", [NewEvent(event=Noted(text="x"))], expected=stale
            )
    [first, *_, last] = await store.read_stream(app_conn, "s", "1")
    assert (first.stream_version, last.stream_version) == (1, 4)
    assert first.occurred_at == at
    assert first.data == Noted(text="1")


async def test_concurrent_single_event_appends_at_one_version_have_one_winner(
    settings, store: EventStore
) -> None:
    conns = [
        await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
        for _ in range(6)
    ]
    try:
        await store.append(conns[0], "s", "race", [NewEvent(event=Noted(text="0"))], expected=0)

        async def attempt(conn: psycopg.AsyncConnection[Any], i: int) -> bool:
            try:
                await store.append(
                    conn, "s", "race", [NewEvent(event=Noted(text=str(i)))], expected=1
                )
            except ConcurrencyError:
                return False
            return True

        wins = await asyncio.gather(*(attempt(c, i) for i, c in enumerate(conns)))
        assert wins.count(True) == 1
        versions = [e.stream_version for e in await store.read_stream(conns[0], "s", "race")]
        assert versions == [1, 2]
    finally:
        for conn in conns:
            await conn.close()
