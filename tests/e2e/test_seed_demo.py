"""`lufy seed --demo` as an operator runs it: a real process, real transcoding, a dashboard."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from lufy.bootstrap import Container
from lufy.demo.seed import PASSWORD
from lufy.settings import Settings
from lufy.testing.analytics import LocalProjector
from tests.helpers.http import api_client

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "--artists",
    "1",
    "--tracks-per-artist",
    "2",
    "--listeners",
    "8",
    "--weeks",
    "1",
    "--sessions-per-day",
    "15",
]


def _seed(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "DATABASE_ADMIN_URL": settings.DATABASE_ADMIN_URL,
        "REDIS_URL": settings.REDIS_URL,
        "LUFY_ENV": "test",
        "JWT_SECRET": settings.JWT_SECRET or "",
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": str(settings.EMAIL_FILE_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "lufy.cli", "seed", "--demo", *SMALL],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _totals(stderr: str) -> dict[str, int]:
    found = re.search(
        r"(\d+) events over .*?: (\d+) accepted, (\d+) duplicate\(s\), (\d+) sampled out, "
        r"(\d+) rejected",
        stderr,
    )
    assert found is not None, stderr
    events, accepted, duplicates, _, rejected = (int(g) for g in found.groups())
    return {"events": events, "accepted": accepted, "duplicates": duplicates, "rejected": rejected}


async def _count(conn: AsyncConnection[Any], query: str) -> int:
    cur = await conn.execute(query)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_seed_demo_fills_the_dashboard_and_a_second_run_adds_nothing(
    settings: Settings, container: Container, admin_conn: AsyncConnection[Any]
) -> None:
    first = await asyncio.to_thread(_seed, settings)
    assert first.returncode == 0, first.stderr
    totals = _totals(first.stderr)
    assert totals["events"] > 0
    assert totals["accepted"] + totals["duplicates"] == totals["events"]
    assert totals["rejected"] == 0
    assert await _count(admin_conn, "SELECT count(*) FROM lufy.tracks WHERE status = 'ready'") == 2
    logged = await _count(admin_conn, "SELECT count(*) FROM lufy.events")

    again = await asyncio.to_thread(_seed, settings)
    assert again.returncode == 0, again.stderr
    rerun = _totals(again.stderr)
    assert (rerun["events"], rerun["accepted"]) == (totals["events"], 0)
    assert await _count(admin_conn, "SELECT count(*) FROM lufy.events") == logged
    assert await _count(admin_conn, "SELECT count(*) FROM lufy.tracks") == 2

    await LocalProjector(container.db, container.store).run()
    async with api_client(container) as client:
        signed_in = await client.post(
            "/api/auth/sign-in", json={"email": "artist1@demo.lufy.local", "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
        overview = await client.get(
            "/api/dashboard/overview",
            params={"range": "30d"},
            headers={"authorization": f"Bearer {token}"},
        )
    assert overview.status_code == 200, overview.text
    body = overview.json()
    # The seed's plays are in the projection and the dashboard reads them: some of its sessions
    # are streams (30 s or more), by at most the 8 listeners it generated.
    assert body["streams"] > 0
    assert 1 <= body["listeners"] <= 8
    assert body["listen_seconds"] >= 30 * body["streams"]
