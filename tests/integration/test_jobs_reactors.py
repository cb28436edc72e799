from __future__ import annotations

import asyncio
import collections
import dataclasses
import threading
from typing import Any

import redis as sync_redis
from psycopg import AsyncConnection

from lufy.jobs import job
from lufy.jobs.broker import current
from lufy.jobs.testing import InProcessWorker
from lufy.projections.runner import Projector

from ._projection_helpers import FAST, EffectReactor, append_counted, make_store

_runs: collections.Counter[str] = collections.Counter()
_guard = threading.Lock()


@job(queue="email-send", name="test_effect_job", min_backoff_ms=20, max_backoff_ms=200)
def effect_job(payload: dict[str, Any], *, job_key: str) -> None:
    with _guard:
        _runs[job_key] += 1
    with current().pool.connection() as conn:
        conn.execute(
            "INSERT INTO lufy.test_job_effects (job_key, stream_id) VALUES (%s, %s) "
            "ON CONFLICT (job_key) DO NOTHING",
            [job_key, payload["stream_id"]],
        )


async def _effects(conn: AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) FROM lufy.test_job_effects")
    return int((await cur.fetchone())[0])


async def _statuses(conn: AsyncConnection) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT status, count(*) FROM lufy.jobs WHERE actor = 'test_effect_job' GROUP BY 1"
    )
    return dict(await cur.fetchall())


async def test_redis_flushed_mid_run_loses_no_job_the_log_implies(settings, app_conn) -> None:
    async with await AsyncConnection.connect(settings.DATABASE_ADMIN_URL, autocommit=True) as a:
        await a.execute(
            "CREATE TABLE lufy.test_job_effects (job_key text PRIMARY KEY, stream_id text);"
            "GRANT SELECT, INSERT ON lufy.test_job_effects TO lufy_app"
        )
    store = make_store()
    options = dataclasses.replace(
        FAST, maintenance=True, sweep_interval=0.2, sweep_grace=0.5, refresh_interval=0
    )
    flusher = sync_redis.Redis.from_url(settings.REDIS_URL)
    projector = Projector(settings, [EffectReactor()], options=options, store=store)
    running = asyncio.create_task(projector.run())
    try:
        for _ in range(10):
            await append_counted(app_conn, store, "a", 10)
        for _ in range(100):
            if sum((await _statuses(app_conn)).values()) == 100:
                break
            await asyncio.sleep(0.05)
        assert await _statuses(app_conn) == {"pending": 100}
        flusher.flushdb()  # Redis restarted without persistence: every queued message is gone

        with InProcessWorker(settings, queues=["email-send"], threads=4) as worker:
            for i in range(10):
                await append_counted(app_conn, store, "b", 10)
                if i == 5:
                    flusher.flushdb()  # and again while the worker is busy
            for _ in range(400):
                if await _statuses(app_conn) == {"done": 200}:
                    break
                await asyncio.sleep(0.05)
            worker.wait_until_finished(timeout=10)
    finally:
        projector.stop()
        await asyncio.wait_for(running, timeout=20)
        flusher.close()
    assert await _statuses(app_conn) == {"done": 200}
    assert await _effects(app_conn) == 200
    cur = await app_conn.execute(
        "SELECT count(*) FROM lufy.jobs WHERE actor = 'test_effect_job' "
        "AND (correlation_id IS NULL OR causation_id IS NULL)"
    )
    assert (await cur.fetchone())[0] == 0
