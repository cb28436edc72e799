"""Dashboard reads on a real streaming replica, and back to the primary when it falls behind.

Where a statement ran is read from pg_stat_statements of each server (loaded by the test's
clusters).

The test makes its own primary (a throwaway cluster on a free loopback port, migrated by
`lufy migrate`) and a hot standby of it with `pg_basebackup -R`, then serves the app with
`DATABASE_URL` on the primary and `DATABASE_READ_URL` on the standby.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from lufy.bootstrap import Container, bootstrap
from lufy.migrate import migrate
from lufy.settings import load_settings
from lufy.testing.analytics import LocalProjector, insert_track
from tests.faults.harness import PgCluster
from tests.faults.standby import Standby, dashboard_statement_calls, enable_statement_stats
from tests.helpers.accounts import create_user
from tests.helpers.http import api_client

pytestmark = pytest.mark.slow

DB = "lufy_replicated"
MAX_LAG = 1.0


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[PgCluster, Standby]]:
    primary = PgCluster()
    standby: Standby | None = None
    try:
        enable_statement_stats(primary)
        primary.start()
        migrate(primary.url(DB), primary.url(DB, "lufy_app", "lufy_app"))
        with psycopg.connect(primary.url(DB), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        standby = Standby(primary)
        yield primary, standby
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()


@pytest.fixture
async def container(
    replicated: tuple[PgCluster, Standby], redis_url: str, tmp_path: Path
) -> AsyncIterator[Container]:
    primary, standby = replicated
    settings = load_settings(
        DATABASE_URL=primary.url(DB, "lufy_app", "lufy_app"),
        DATABASE_ADMIN_URL=primary.url(DB),
        DATABASE_READ_URL=standby.url(DB, "lufy_app", "lufy_app"),
        READ_REPLICA_MAX_LAG=MAX_LAG,
        REDIS_URL=redis_url,
        LUFY_ENV="test",
        JWT_SECRET="test-secret-that-is-long-enough-for-hs256-0123456789",
        EMAIL_BACKEND="file",
        EMAIL_FILE_DIR=tmp_path / "mail",
        MEDIA_ROOT=tmp_path / "media",
        APP_URL="http://testserver.local",
        RATE_LIMIT_ENABLED=False,
    )
    c = bootstrap(settings)
    await c.start()
    yield c
    await c.stop()


async def dashboard_queries_seen(url: str) -> int:
    return await dashboard_statement_calls(url, DB)


async def wait_until(check: Any, what: str, within: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def seed_one_session(container: Container, client: httpx.AsyncClient, track: uuid.UUID):
    start = datetime.now(UTC) - timedelta(minutes=2)
    session = "s-" + uuid.uuid4().hex[:8]
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "occurred_at": (start + timedelta(seconds=offset)).isoformat(),
            "session_id": session,
            "anonymous_id": "anon-replica",
            "track_id": str(track),
            "listened_ms": listened,
        }
        for kind, offset, listened in (("playback.started", 0, 0), ("playback.progress", 45, 45000))
    ]
    response = await client.post(
        "/api/analytics/events",
        content=json.dumps({"events": events}),
        headers={"content-type": "application/json", "user-agent": "Mozilla/5.0 Firefox/128.0"},
    )
    assert response.status_code == 202, response.text
    await LocalProjector(container.db, container.store).run()


async def test_dashboard_reads_go_to_a_fresh_replica_and_fall_back_to_the_primary_when_replay_stops(
    container: Container, replicated: tuple[PgCluster, Standby]
) -> None:
    primary, standby = replicated
    artist = await create_user(container, role="artist")
    async with await psycopg.AsyncConnection.connect(primary.url(DB), autocommit=True) as admin:
        track = await insert_track(admin, artist.id, title="Replicated")

    async def overview(client: httpx.AsyncClient) -> httpx.Response:
        response = await client.get(
            "/api/dashboard/overview", params={"range": "7d"}, headers=artist.headers
        )
        assert response.status_code == 200, response.text
        return response

    async with api_client(container) as client:
        await seed_one_session(container, client, track)

        async def from_replica() -> httpx.Response | None:
            response = await overview(client)
            fresh = "lufy-data-lag" in response.headers and response.json()["listen_seconds"]
            return response if fresh else None

        served = await wait_until(from_replica, "a dashboard answer from the replica")
        assert served.json()["listen_seconds"] == 45
        assert 0 <= float(served.headers["lufy-data-lag"]) <= MAX_LAG
        assert await dashboard_queries_seen(standby.url(DB)) >= 1
        assert await dashboard_queries_seen(primary.url(DB)) == 0

        # Stop the replica's replay while the primary keeps writing: it falls behind.
        async with await psycopg.AsyncConnection.connect(standby.url(), autocommit=True) as sb:
            await sb.execute("SELECT pg_wal_replay_pause()")
        try:
            await create_user(container, role="listener")  # WAL the standby receives, unreplayed

            async def from_primary() -> httpx.Response | None:
                response = await overview(client)
                return None if "lufy-data-lag" in response.headers else response

            fallback = await wait_until(from_primary, "the dashboard to fall back to the primary")
            assert fallback.json()["listen_seconds"] == 45
            assert await dashboard_queries_seen(primary.url(DB)) >= 1
        finally:
            async with await psycopg.AsyncConnection.connect(standby.url(), autocommit=True) as sb:
                await sb.execute("SELECT pg_wal_replay_resume()")

        # Replay resumed: reads return to the replica.
        back = await wait_until(from_replica, "reads to return to the replica")
        assert back.json()["listen_seconds"] == 45


async def test_row_level_security_holds_on_the_replica_as_on_the_primary(
    container: Container, replicated: tuple[PgCluster, Standby]
) -> None:
    _, standby = replicated
    artist = await create_user(container, role="artist")
    async with await psycopg.AsyncConnection.connect(
        standby.url(DB, "lufy_app", "lufy_app"), autocommit=True
    ) as conn:

        async def visible_users(user_id: str) -> int:
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.current_user_id', %s, true)", [user_id])
                cur = await conn.execute("SELECT count(*) FROM lufy.users")
                row = await cur.fetchone()
            assert row is not None
            return int(row[0])

        async def replicated_artist() -> bool:
            return await visible_users(str(artist.id)) == 1

        await wait_until(replicated_artist, "the artist's row on the replica")
        assert await visible_users(str(uuid.uuid4())) == 0
        assert await visible_users("") == 0
        # A read-only standby refuses writes whatever the role may do on the primary.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await conn.execute("UPDATE lufy.users SET display_name = 'x'")
