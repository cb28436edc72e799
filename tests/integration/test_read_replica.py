"""Dashboard reads on a real streaming replica, and back to the primary when it falls behind.

Where a statement ran is read from pg_stat_statements of each server (loaded by the test's
clusters).

The test makes its own primary (a throwaway cluster on a free loopback port, migrated by
`lufy migrate`) and a hot standby of it with `pg_basebackup -R`, then serves the app with
`DATABASE_URL` on the primary and `DATABASE_READ_URL` on the standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from lufy.analytics.testing import LocalProjector, insert_track
from lufy.bootstrap import Container, bootstrap
from lufy.migrate import migrate
from lufy.settings import load_settings
from lufy.sqlfiles import load_queries
from tests.faults.harness import PG_BIN, PgCluster, _as_postgres, free_port
from tests.helpers.accounts import create_user
from tests.helpers.http import api_client

pytestmark = pytest.mark.slow

DB = "lufy_replicated"
MAX_LAG = 1.0


class Standby:
    """A hot standby of `primary`, made with `pg_basebackup -R`, on a port of its own."""

    def __init__(self, primary: PgCluster) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lufy-standby-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.root, pg.pw_uid, pg.pw_gid)
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary.port),
                    "-U",
                    "postgres",
                    "-D",
                    str(self.data),
                    "-R",
                    "-X",
                    "stream",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            # The copy carries the primary's port and socket directory: later lines win.
            conf.write(
                f"port = {self.port}\nunix_socket_directories = '{self.root}'\n"
                "hot_standby = on\nhot_standby_feedback = on\n"
            )
        subprocess.run(
            _as_postgres(
                [
                    *(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)),
                    *("start", "-w", "-t", "60"),
                ]
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )

    def url(self, dbname: str = "postgres", user: str = "postgres", password: str = "") -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                _as_postgres(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "stop", "-m", "immediate"]
                ),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[PgCluster, Standby]]:
    primary = PgCluster()
    standby: Standby | None = None
    try:
        with (primary.data / "postgresql.conf").open("a") as conf:
            # Counts statements per server; the standby inherits it with the base backup.
            conf.write("shared_preload_libraries = 'pg_stat_statements'\n")
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


def _fingerprints() -> list[str]:
    """The longest placeholder-free line of each dashboard query: how it shows in
    pg_stat_activity.query."""
    queries = load_queries("lufy.analytics", "dashboard.sql")
    prints = []
    for name in queries.names():
        lines = [
            line.strip()
            for line in getattr(queries, name).splitlines()
            # pg_stat_statements shows constants as $n: lines without any.
            if not any(c in line for c in "%'$0123456789") and not line.strip().startswith("--")
        ]
        longest = max(lines, key=len, default="")
        if len(longest) >= 20:
            prints.append(longest)
    assert prints, "no dashboard query to recognise"
    return prints


async def dashboard_queries_seen(url: str) -> int:
    """How many dashboard statements lufy_app ran on this server (pg_stat_statements counts
    per server: a standby counts what ran on it). pg_stat_activity only keeps a backend's last
    statement, which for a dashboard read is the COMMIT that ends it."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT s.query, s.calls FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.userid "
            "WHERE d.datname = %s AND r.rolname = 'lufy_app'",
            [DB],
        )
        rows = [(str(q), int(n)) for q, n in await cur.fetchall()]
    prints = _fingerprints()
    return sum(n for text, n in rows if any(p in text for p in prints))


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
