"""The log is append-only for real: no grant for the app role, and a trigger for everyone."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from lufy.eventstore import NO_STREAM, EventStore, NewEvent
from lufy.operations.events import ProjectionRebuilt

CHANGES = [
    "UPDATE lufy.events SET data = '{\"forged\": true}'::jsonb",
    "DELETE FROM lufy.events",
    "TRUNCATE lufy.events",
    "TRUNCATE lufy.events CASCADE",
]


async def _one_event(app_conn: psycopg.AsyncConnection[Any], store: EventStore) -> None:
    event = ProjectionRebuilt(projection="p", version=1, events_applied=3)
    await store.append(app_conn, "operations", "p", [NewEvent(event=event)], expected=NO_STREAM)


async def _untouched(conn: psycopg.AsyncConnection[Any]) -> None:
    cur = await conn.execute("SELECT count(*), min(data->>'projection') FROM lufy.events")
    assert await cur.fetchone() == (1, "p")


@pytest.mark.parametrize("statement", CHANGES)
async def test_the_app_role_may_not_change_the_log(
    app_conn, store: EventStore, statement: str
) -> None:
    await _one_event(app_conn, store)
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        await app_conn.execute(statement)
    await _untouched(app_conn)


@pytest.mark.parametrize("statement", CHANGES)
async def test_even_the_owner_is_stopped_by_the_trigger(
    app_conn, admin_conn, store: EventStore, statement: str
) -> None:
    await _one_event(app_conn, store)
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        await admin_conn.execute(statement)
    await _untouched(admin_conn)


async def test_the_app_role_reads_the_log_and_writes_only_the_columns_a_writer_chooses(
    app_conn,
) -> None:
    cur = await app_conn.execute(
        "SELECT privilege_type FROM information_schema.role_table_grants "
        "WHERE table_schema = 'lufy' AND table_name = 'events' AND grantee = 'lufy_app'"
    )
    assert [r[0] for r in await cur.fetchall()] == ["SELECT"]
    cur = await app_conn.execute(
        "SELECT column_name FROM information_schema.column_privileges "
        "WHERE table_schema = 'lufy' AND table_name = 'events' AND grantee = 'lufy_app' "
        "AND privilege_type = 'INSERT' ORDER BY 1"
    )
    assert [r[0] for r in await cur.fetchall()] == sorted(
        [
            "event_id",
            "stream_type",
            "stream_id",
            "stream_version",
            "type",
            "schema_version",
            "data",
            "metadata",
            "occurred_at",
        ]
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("transaction_id", "'99999999999'::xid8"),
        ("recorded_at", "'2001-01-01T00:00:00Z'::timestamptz"),
    ],
)
async def test_the_app_role_cannot_choose_the_transaction_id_or_recording_time(
    app_conn, column: str, value: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        await app_conn.execute(
            f"INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data, {column}) "
            f"VALUES (gen_random_uuid(), 's', '1', 'operations.projection_rebuilt', '{{}}', "
            f"{value})"
        )


async def test_the_app_role_cannot_choose_the_global_position(app_conn) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        await app_conn.execute(
            "INSERT INTO lufy.events (global_position, event_id, stream_type, stream_id, type, "
            "data) OVERRIDING SYSTEM VALUE VALUES (1, gen_random_uuid(), 's', '1', "
            "'operations.projection_rebuilt', '{}')"
        )


async def test_the_analyst_role_cannot_read_the_raw_log(settings) -> None:
    from urllib.parse import urlsplit, urlunsplit

    url = urlsplit(settings.DATABASE_URL)
    analyst = urlunsplit(
        url._replace(netloc=f"lufy_analyst:lufy_analyst@{url.hostname}:{url.port or 5432}")
    )
    async with await psycopg.AsyncConnection.connect(analyst, autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute("SELECT count(*) FROM lufy.events")
