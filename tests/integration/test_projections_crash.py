from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from lufy.projections.rebuild import rebuild

from ._projection_helpers import (
    CountingProjection,
    append_counted,
    counted,
    create_tables,
    make_store,
    wait_for_count,
)

ROOT = Path(__file__).resolve().parents[2]


def _spawn(settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration._projection_helpers",
            settings.DATABASE_URL,
            settings.REDIS_URL,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LUFY_ENV": "test"},
    )


async def test_a_projector_killed_mid_batch_again_and_again_ends_equal_to_a_clean_rebuild(
    settings, app_conn
) -> None:
    await create_tables(settings.DATABASE_ADMIN_URL)
    store = make_store()
    rng = random.Random(3)
    total = 0
    done = asyncio.Event()

    async def appender() -> None:
        nonlocal total
        for i in range(120):
            await append_counted(app_conn, store, f"s{i % 5}", 50, n=i)
            total += 50
            await asyncio.sleep(0.01)
        done.set()

    writing = asyncio.create_task(appender())
    child = _spawn(settings)
    kills = 0
    try:
        while not done.is_set() or kills < 4:
            # Kill only once the new child is applying batches, at a random moment within them.
            start = await counted(app_conn)
            for _ in range(200):
                if await counted(app_conn) > start or (done.is_set() and start == total):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(0.0, 0.15))
            child.send_signal(signal.SIGKILL)
            child.wait()
            kills += 1
            child = _spawn(settings)
        await writing
        assert await wait_for_count(app_conn, total) == total
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=20)
    assert kills >= 4
    assert await counted(app_conn) == total
    result = await rebuild(settings.DATABASE_URL, CountingProjection(), store=store, compare=True)
    assert result.differences == {"test_counter": (0, 0), "test_counter_seen": (0, 0)}
    assert result.events_applied == total
