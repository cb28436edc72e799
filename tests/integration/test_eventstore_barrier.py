"""The read barrier is this database's: a long transaction elsewhere in the cluster does not
hold readers back, while one in this database still does (sql/0003)."""

from __future__ import annotations

from typing import Any

import psycopg

from lufy.eventstore import ANY, Checkpoint, EventStore, NewEvent
from lufy.operations.events import ProjectionRebuilt
from tests.conftest import ADMIN_BASE


def _event() -> NewEvent:
    return NewEvent(event=ProjectionRebuilt(projection="p", version=1, events_applied=0))


async def test_an_open_transaction_in_another_database_does_not_hold_readers_back(
    app_conn: Any, store: EventStore
) -> None:
    async with await psycopg.AsyncConnection.connect(ADMIN_BASE) as elsewhere:
        # An open transaction with an xid, in the cluster's `postgres` database.
        await elsewhere.execute("SELECT pg_current_xact_id()")
        result = await store.append(app_conn, "operations", "p", [_event()], expected=ANY)
        page = await store.read_all(app_conn, Checkpoint.START)
        assert [e.global_position for e in page.events] == result.positions
        await elsewhere.rollback()


async def test_an_open_transaction_in_this_database_still_holds_readers_back(
    app_conn: Any, admin_conn: Any, store: EventStore, settings: Any
) -> None:
    async with await psycopg.AsyncConnection.connect(settings.DATABASE_URL) as here:
        await here.execute("SELECT pg_current_xact_id()")  # may write events later
        result = await store.append(app_conn, "operations", "p", [_event()], expected=ANY)
        held = await store.read_all(app_conn, Checkpoint.START)
        assert held.events == []
        assert held.checkpoint < Checkpoint(result.transaction_id, 0)
        await here.rollback()
    page = await store.read_all(app_conn, held.checkpoint)
    assert [e.global_position for e in page.events] == result.positions
