"""Appends go through one cursor per connection (postgres.py, `_take_cursor`): kept on the
connection between appends, never shared by two appends at once, whatever the connection's
row factory."""

from __future__ import annotations

import asyncio

import pytest
from psycopg.rows import dict_row

from lufy.errors import ConcurrencyError
from lufy.eventstore import ANY, NO_STREAM, Event, EventCodec, EventStore, NewEvent


class Counted(Event, frozen=True, tag="test.counted"):
    n: int


@pytest.fixture
def store() -> EventStore:
    return EventStore(EventCodec([Counted]))


def counted(n: int) -> list[NewEvent]:
    return [NewEvent(event=Counted(n=n))]


async def test_appends_on_one_connection_reuse_one_cursor(app_conn, store: EventStore) -> None:
    await store.append(app_conn, "c", "1", counted(1), expected=NO_STREAM)
    kept = vars(app_conn)["_lufy_append_cursor"]
    second = await store.append(app_conn, "c", "1", counted(2), expected=1)
    assert vars(app_conn)["_lufy_append_cursor"] is kept
    assert second.stream_version == 2


async def test_a_failed_append_gives_the_cursor_back_and_the_next_one_works(
    app_conn, store: EventStore
) -> None:
    await store.append(app_conn, "c", "2", counted(1), expected=NO_STREAM)
    with pytest.raises(ConcurrencyError):
        await store.append(app_conn, "c", "2", counted(2), expected=5)
    assert "_lufy_append_cursor" in vars(app_conn)
    result = await store.append(app_conn, "c", "2", counted(2), expected=1)
    assert result.stream_version == 2


async def test_the_connections_row_factory_does_not_matter(app_conn, store: EventStore) -> None:
    # The append reads its returned rows by position: its cursor makes tuples, whatever the
    # connection makes for everybody else.
    app_conn.row_factory = dict_row
    first = await store.append(app_conn, "c", "3", counted(1), expected=NO_STREAM)
    second = await store.append(app_conn, "c", "3", counted(2), expected=1)
    third = await store.append(app_conn, "c", "3", counted(3), expected=ANY)
    assert (first.stream_version, second.stream_version, third.stream_version) == (1, 2, 3)
    cur = await app_conn.execute("SELECT 1 AS one")
    assert await cur.fetchone() == {"one": 1}


async def test_tasks_appending_on_one_connection_each_get_their_own_result(
    app_conn, store: EventStore
) -> None:
    # psycopg serialises the statements on the connection; while an append runs, the kept
    # cursor is out of its slot and the others make their own: each reads its own row.
    await store.append(app_conn, "c", "seed", counted(0), expected=NO_STREAM)
    assert "_lufy_append_cursor" in vars(app_conn)
    results = await asyncio.gather(
        *(store.append(app_conn, "c", f"t{i}", counted(i), expected=NO_STREAM) for i in range(6))
    )
    positions = [r.positions[0] for r in results]
    assert len(set(positions)) == 6
    cur = await app_conn.execute(
        "SELECT stream_id, global_position FROM lufy.events WHERE stream_type = 'c'"
        " AND stream_id LIKE 't%%'"
    )
    stored = dict(await cur.fetchall())
    assert stored == {f"t{i}": r.positions[0] for i, r in enumerate(results)}
