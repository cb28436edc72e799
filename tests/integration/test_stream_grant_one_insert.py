"""The grant as one INSERT (`lufy.try_stream_grant`, sql/0981) and a stream's last version read
from the end of its index: grants racing on one track, a replayed grant, and how much of a long
stream an append reads."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from lufy.bootstrap import Container
from lufy.catalog.events import STREAM_AUTH_STREAM
from lufy.catalog.grants import GrantConnections, record_grant
from lufy.catalog.service import everyone_premium
from lufy.eventstore import ANY
from lufy.identity import Principal
from lufy.sqlfiles import load_queries
from tests.helpers.accounts import create_user
from tests.helpers.grants import grant_event, ready_track

_Q = load_queries("lufy.catalog")


async def _stream(admin_conn: Any, track_id: uuid.UUID) -> list[tuple[int, uuid.UUID]]:
    cur = await admin_conn.execute(
        "SELECT stream_version, event_id FROM lufy.events "
        "WHERE stream_type = %s AND stream_id = %s ORDER BY stream_version",
        [STREAM_AUTH_STREAM, str(track_id)],
    )
    return [(int(v), e) for v, e in await cur.fetchall()]


async def test_grants_racing_on_one_track_are_all_recorded_once_in_version_order(
    container: Container, admin_conn: Any
) -> None:
    # Eight connections grant the same track at once: every version is fought over, the
    # losers' single INSERT fails on the unique index and lufy.issue_stream_grant appends
    # them after the winner; every grant is recorded exactly once, versions 1..n with no gap.
    listener = await create_user(container, role="listener")
    principal = Principal(user_id=listener.id, role="listener", session_id=listener.session_id)
    track_id = await ready_track(container, admin_conn)
    grants = GrantConnections(container.db, max_size=8)
    codec = container.store.codec
    issued: list[uuid.UUID] = []

    async def play(n: int) -> None:
        for _ in range(n):
            grant = grant_event(track_id)
            tier = await record_grant(
                grants, codec, everyone_premium, principal, STREAM_AUTH_STREAM, track_id, grant
            )
            assert tier == "premium"
            issued.append(grant.event_id)

    try:
        await asyncio.gather(*(play(12) for _ in range(8)))
    finally:
        await grants.aclose()
    stream = await _stream(admin_conn, track_id)
    assert [v for v, _ in stream] == list(range(1, 97))
    assert sorted(e for _, e in stream) == sorted(issued)


async def test_a_replayed_grant_is_answered_without_a_second_event(
    container: Container, admin_conn: Any
) -> None:
    # A retry of the same grant (the same event id, after a broken connection) is a replay.
    track_id = await ready_track(container, admin_conn)
    grant, other = grant_event(track_id), grant_event(track_id)
    type_name, schema_version, data = container.store.codec.encode(grant.event)
    params = {
        "track_id": track_id,
        "user_id": None,
        "role": None,
        "stream_type": STREAM_AUTH_STREAM,
        "event_id": grant.event_id,
        "type": type_name,
        "schema_version": schema_version,
        "data": data,
        "metadata": container.store.codec.encode_metadata(grant.metadata),
        "occurred_at": grant.occurred_at,
        "subscriptions": False,
    }
    async with container.db.connection() as conn:
        for _ in range(2):
            cur = await conn.execute(_Q.try_stream_grant, params)
            assert (await cur.fetchone())[:3] == (True, "ready", True)
        # The same id for another event is refused (LU422), and nothing is written.
        other_data = container.store.codec.encode(other.event)[2]
        with pytest.raises(psycopg.DatabaseError) as refused:
            await conn.execute(_Q.try_stream_grant, {**params, "data": other_data})
        assert refused.value.sqlstate == "LU422"
    assert await _stream(admin_conn, track_id) == [(1, grant.event_id)]


async def _stream_index_reads(admin_conn: Any, call: str, params: dict[str, Any]) -> int:
    """Index entries of lufy.events' stream indexes read by `call` (this transaction's own
    counts), rolled back afterwards."""
    async with admin_conn.transaction(force_rollback=True):
        await admin_conn.execute(call, params)
        cur = await admin_conn.execute(
            "SELECT pg_stat_get_xact_tuples_returned('lufy.events_stream_position'::regclass) "
            "+ pg_stat_get_xact_tuples_returned('lufy.events_stream_version_key'::regclass)"
        )
        return int((await cur.fetchone())[0])


async def test_an_append_at_any_version_reads_one_entry_of_a_long_stream(
    container: Container, admin_conn: Any
) -> None:
    # The last version of a stream comes from the end of events_stream_version_key, whatever
    # the stream's length and plan (generic plans, no statistics: the log is never analysed
    # here); max(stream_version) on a generic plan read every event of the stream.
    track_id = await ready_track(container, admin_conn)
    await admin_conn.execute(
        "INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type, "
        "schema_version, data, metadata, occurred_at) "
        "SELECT gen_random_uuid(), %s, %s, g, 'test.filler', 1, '{}', '{}', now() "
        "FROM generate_series(1, 3000) AS g",
        [STREAM_AUTH_STREAM, str(track_id)],
    )
    grant = grant_event(track_id)
    type_name, schema_version, data = container.store.codec.encode(grant.event)
    params = {
        "track_id": track_id,
        "stream_type": STREAM_AUTH_STREAM,
        "stream_id": str(track_id),
        "event_id": grant.event_id,
        "type": type_name,
        "schema_version": schema_version,
        "data": data,
        "metadata": "{}",
        "occurred_at": grant.occurred_at,
    }
    await admin_conn.execute("SET plan_cache_mode = force_generic_plan")
    try_grant = (
        "SELECT * FROM lufy.try_stream_grant(%(track_id)s, NULL, 'admin', %(stream_type)s, "
        "%(event_id)s, %(type)s, %(schema_version)s, %(data)s, %(metadata)s, "
        "%(occurred_at)s, false)"
    )
    append = (
        "SELECT * FROM lufy.append_to_stream(%(stream_type)s, %(stream_id)s, -2, "
        "ARRAY[%(event_id)s::uuid], ARRAY[%(type)s], ARRAY[%(schema_version)s::int], "
        "ARRAY[%(data)s::jsonb], ARRAY[%(metadata)s::jsonb], ARRAY[%(occurred_at)s::timestamptz])"
    )
    for call in (try_grant, append):
        assert await _stream_index_reads(admin_conn, call, params) <= 10
    # The event store's own append at ANY (its one-statement path, `stream_any`).
    async with admin_conn.transaction(force_rollback=True):
        written = await container.store.append(
            admin_conn, STREAM_AUTH_STREAM, str(track_id), [grant], expected=ANY
        )
        assert written.stream_version == 3001
        cur = await admin_conn.execute(
            "SELECT pg_stat_get_xact_tuples_returned('lufy.events_stream_position'::regclass) "
            "+ pg_stat_get_xact_tuples_returned('lufy.events_stream_version_key'::regclass)"
        )
        assert int((await cur.fetchone())[0]) <= 10
