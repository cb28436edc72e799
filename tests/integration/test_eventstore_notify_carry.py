"""An append that commits alone carries the NOTIFY in its own statement when one is due
(Notifier.claim): delivered at its commit, sent by the writer's backend; otherwise, or when the
append wrote nothing, the notifier's own connection sends it after the commit."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from lufy.errors import ConcurrencyError
from lufy.eventstore import ANY, NO_STREAM, Event, EventCodec, EventStore, NewEvent, Notifier


class Rang(Event, frozen=True, tag="test.rang"):
    n: int


def rang(n: int) -> list[NewEvent]:
    return [NewEvent(event=Rang(n=n))]


async def _pid(conn: psycopg.AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT pg_backend_pid()")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _next_notify_pid(listener: psycopg.AsyncConnection[Any]) -> int:
    gen = listener.notifies(timeout=20, stop_after=1)  # bounds a hang only
    pids = [n.pid async for n in gen if n.channel == "lufy_events"]
    assert len(pids) == 1
    return pids[0]


async def _sent(notifier: Notifier, n: int) -> bool:
    """Whether the notifier counts `n` NOTIFYs sent (it counts one once its statement returned,
    which may be after the listener heard it): looks for up to 20 s (bounds a hang only)."""
    for _ in range(2000):
        if notifier.sent >= n:
            break
        await asyncio.sleep(0.01)
    return notifier.sent == n


@pytest.fixture
async def listener(settings) -> Any:
    conn = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    await conn.execute("LISTEN lufy_events")
    yield conn
    await conn.close()


async def test_a_due_notify_goes_with_the_append_and_the_next_ones_through_the_notifier(
    settings, app_conn, listener
) -> None:
    notifier = Notifier(settings.DATABASE_URL, min_interval=2.0)
    await notifier.start()
    store = EventStore(EventCodec([Rang]), notifier=notifier)
    writer = await _pid(app_conn)
    try:
        await store.append(app_conn, "r", "1", rang(1), expected=NO_STREAM)
        assert (notifier.carried, notifier.sent) == (1, 0)
        assert await _next_notify_pid(listener) == writer
        # Within min_interval of it: no claim; the notifier sends one after the interval.
        await store.append(app_conn, "r", "1", rang(2), expected=1)
        await store.append(app_conn, "r", "1", rang(3), expected=2)
        assert notifier.carried == 1
        assert await _next_notify_pid(listener) != writer
        assert await _sent(notifier, 1)
        await asyncio.sleep(2.1)
        await store.append(app_conn, "r", "1", rang(4), expected=3)
        assert (notifier.carried, notifier.sent) == (2, 1)
        assert await _next_notify_pid(listener) == writer
    finally:
        await notifier.stop()


@pytest.mark.parametrize("outcome", ["replay", "conflict"])
async def test_an_append_that_writes_nothing_gives_its_notify_back(
    settings, app_conn, listener, outcome: str
) -> None:
    store = EventStore(EventCodec([Rang]))
    first = rang(1)
    await store.append(app_conn, "r", "1", first, expected=NO_STREAM)
    await _next_notify_pid(listener)  # the store's own, sent after that commit
    notifier = Notifier(settings.DATABASE_URL, min_interval=0.05)
    await notifier.start()
    store.notifier = notifier
    writer = await _pid(app_conn)
    try:
        if outcome == "replay":
            result = await store.append(app_conn, "r", "1", first, expected=ANY)
            assert result.idempotent_replay
        else:
            with pytest.raises(ConcurrencyError):
                await store.append(app_conn, "r", "1", rang(2), expected=NO_STREAM)
        assert notifier.carried == 0
        # The claimed NOTIFY was given back: the notifier's connection sends it.
        assert await _next_notify_pid(listener) != writer
        assert await _sent(notifier, 1)
    finally:
        await notifier.stop()


async def test_inside_a_transaction_the_notifier_is_not_asked(settings, app_conn, listener) -> None:
    notifier = Notifier(settings.DATABASE_URL)
    await notifier.start()
    store = EventStore(EventCodec([Rang]), notifier=notifier)
    writer = await _pid(app_conn)
    try:
        async with app_conn.transaction():
            await store.append(app_conn, "r", "1", rang(1), expected=NO_STREAM)
        assert await _next_notify_pid(listener) == writer
        assert (notifier.carried, notifier.sent) == (0, 0)
    finally:
        await notifier.stop()
