"""The Notifier sends each NOTIFY as a simple query without waiting for its answer, and reads
that answer before sending the next (notifier.py): readers are woken, and a connection that
broke in between is noticed and replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from lufy.eventstore import Notifier


async def _notified(listener: psycopg.AsyncConnection[Any], seconds: float) -> int:
    return len([n async for n in listener.notifies(timeout=seconds) if n.channel == "lufy_events"])


async def test_pokes_wake_listeners_and_a_broken_connection_is_replaced(
    settings, admin_conn
) -> None:
    notifier = Notifier(settings.DATABASE_URL, min_interval=0.01)
    await notifier.start()
    listener = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    try:
        await listener.execute("LISTEN lufy_events")
        assert notifier.poke()
        assert await _notified(listener, 2.0) >= 1
        assert notifier.sent == 1
        # Its answer was read before the next NOTIFY goes: nothing is left waiting.
        for _ in range(5):
            assert notifier.poke()
            await asyncio.sleep(0.03)
        assert await _notified(listener, 1.0) >= 1
        assert notifier.sent >= 3

        cur = await admin_conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE '%NOTIFY lufy_events'"
            "   AND pid <> pg_backend_pid()"
        )
        assert [r for (r,) in await cur.fetchall()] == [True]
        sent = notifier.sent
        woken = 0
        for _ in range(40):  # the failed send, a pause of 0.5 s, then a new connection
            assert notifier.poke()
            woken += await _notified(listener, 0.1)
            if woken and notifier.sent > sent:
                break
        assert woken >= 1
        assert notifier.sent > sent
    finally:
        await listener.close()
        await notifier.stop()
