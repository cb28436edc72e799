from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from lufy.projections.runner import Projector

from ._projection_helpers import (
    FAST,
    CountingProjection,
    append_counted,
    create_tables,
    make_store,
    wait_for_count,
)

ROOT = Path(__file__).resolve().parents[2]


def _lufy(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "DATABASE_ADMIN_URL": settings.DATABASE_ADMIN_URL,
        "REDIS_URL": settings.REDIS_URL,
        "LUFY_ENV": "test",
    }
    return subprocess.run(
        [sys.executable, "-m", "lufy.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_status_json_lists_each_projection_with_position_lag_and_state(
    settings, app_conn
) -> None:
    await create_tables(settings.DATABASE_ADMIN_URL)
    store = make_store()
    await append_counted(app_conn, store, "a", 5)
    projector = Projector(settings, [CountingProjection()], options=FAST, store=store)
    task = asyncio.create_task(projector.run())
    assert await wait_for_count(app_conn, 5) == 5
    projector.stop()
    await task
    await append_counted(app_conn, store, "a", 3)

    done = await asyncio.to_thread(_lufy, settings, "projections", "status", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    counter = rows["test_counter"]
    assert {"name", "position", "lag_events", "lag_seconds", "state"} <= set(counter)
    assert (counter["state"], counter["lag_events"]) == ("running", 3)
    assert counter["position"] > 0
    assert counter["lag_seconds"] >= 0


async def test_skipping_an_unknown_projection_or_position_fails_with_one_clear_line(
    settings,
) -> None:
    unknown = await asyncio.to_thread(_lufy, settings, "projections", "skip", "nope", "1")
    assert unknown.returncode == 2
    assert "unknown projection 'nope'" in unknown.stderr
    missing = await asyncio.to_thread(
        _lufy, settings, "projections", "skip", "catalog_media_processing", "999999"
    )
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].startswith("lufy: ")
