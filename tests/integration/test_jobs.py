from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from lufy.jobs import JobSpec, job
from lufy.jobs.broker import current
from lufy.jobs.ledger import enqueue, record
from lufy.jobs.testing import InProcessWorker

ROOT = Path(__file__).resolve().parents[2]
_calls: collections.Counter[str] = collections.Counter()
_effects: list[str] = []
_guard = threading.Lock()


@job(queue="email-send", name="test_flaky_job", min_backoff_ms=20, max_backoff_ms=100)
def flaky_job(payload: dict[str, Any], *, job_key: str) -> None:
    with _guard:
        _calls[job_key] += 1
        if _calls[job_key] <= payload["failures"]:
            raise RuntimeError(f"transient failure {_calls[job_key]}")
        _effects.append(job_key)


_buried: list[tuple[str, str]] = []


def _give_up(payload: dict[str, Any], *, job_key: str, error: str) -> None:
    with _guard:
        _buried.append((job_key, error))


@job(queue="email-send", name="test_doomed_job", max_retries=2, min_backoff_ms=20, on_dead=_give_up)
def doomed_job(payload: dict[str, Any], *, job_key: str) -> None:
    with _guard:
        _calls[job_key] += 1
        if not payload.get("fixed"):
            raise ValueError("the mail server refuses this address")
        _effects.append(job_key)


async def _record_and_send(settings: Any, spec: JobSpec) -> None:
    async with await psycopg.AsyncConnection.connect(settings.DATABASE_URL) as conn:
        async with conn.transaction():
            queued = await record(conn, spec, source="test")
        assert queued is not None
        await enqueue(current(), [queued])


async def _job_row(settings: Any, actor: str, key: str) -> tuple[Any, ...]:
    async with await psycopg.AsyncConnection.connect(settings.DATABASE_URL) as conn:
        cur = await conn.execute(
            "SELECT status, attempts, last_error FROM lufy.jobs WHERE actor = %s AND job_key = %s",
            [actor, key],
        )
        row = await cur.fetchone()
        assert row is not None
        return row


async def test_a_job_that_fails_twice_then_succeeds_has_its_effect_once(settings) -> None:
    key = "flaky-1"
    with InProcessWorker(settings, queues=["email-send"]) as worker:
        spec = JobSpec(actor="test_flaky_job", queue="email-send", payload={"failures": 2}, key=key)
        await _record_and_send(settings, spec)
        worker.wait_until_finished(timeout=20)
        # A duplicate delivery of a finished job (Redis redelivery, a sweep) changes nothing.
        await enqueue(worker.runtime, [_queued(spec)])  # type: ignore[arg-type]
        await enqueue(worker.runtime, [_queued(spec)])  # type: ignore[arg-type]
        worker.wait_until_finished(timeout=20)
        assert worker.runtime is not None
        worker.runtime.broker.join("email-send", timeout=10_000)
    assert _effects.count(key) == 1
    assert _calls[key] == 3
    status, attempts, last_error = await _job_row(settings, "test_flaky_job", key)
    assert (status, attempts, last_error) == ("done", 3, None)


def _queued(spec: JobSpec) -> Any:
    from lufy.jobs.broker import QueuedJob

    return QueuedJob(actor=spec.actor, job_key=spec.key, queue=spec.queue, payload=spec.payload)


async def test_a_job_out_of_retries_is_dead_until_an_operator_retries_it(settings) -> None:
    key = "doomed-1"
    with InProcessWorker(settings, queues=["email-send"]) as worker:
        spec = JobSpec(actor="test_doomed_job", queue="email-send", payload={}, key=key)
        await _record_and_send(settings, spec)
        worker.wait_until_finished(timeout=20)
        status, attempts, last_error = await _job_row(settings, "test_doomed_job", key)
        assert (status, attempts) == ("dead", 3)
        assert "refuses this address" in last_error
        assert key not in _effects
        # Its on_dead ran once, with the last error.
        assert [k for k, _ in _buried] == [key]
        assert "refuses this address" in _buried[0][1]

        listed = await asyncio.to_thread(_lufy, settings, "jobs", "dead", "--json")
        assert [(j["actor"], j["job_key"]) for j in json.loads(listed.stdout)] == [
            ("test_doomed_job", key)
        ]
        # The operator fixes the cause (here: the payload), then retries from the command line.
        async with await psycopg.AsyncConnection.connect(settings.DATABASE_URL) as conn:
            await conn.execute(
                "UPDATE lufy.jobs SET payload = '{\"fixed\": true}' WHERE job_key = %s", [key]
            )
            await conn.commit()
        retried = await asyncio.to_thread(_lufy, settings, "jobs", "retry", "--key", key)
        assert retried.returncode == 0, retried.stderr
        assert "1 dead job(s) sent again" in retried.stderr
        worker.wait_until_finished(timeout=20)
    status, attempts, _ = await _job_row(settings, "test_doomed_job", key)
    assert (status, attempts) == ("done", 1)
    assert _effects.count(key) == 1
    assert [k for k, _ in _buried] == [key]  # a job that ends done is not given up again


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


@job(queue="email-send", name="test_overrunning_job", max_retries=0, time_limit_ms=300)
def overrunning_job(payload: dict[str, Any], *, job_key: str) -> None:
    for _ in range(100):  # 5 s in slices: an interrupt lands between them
        time.sleep(0.05)
    with _guard:
        _effects.append(job_key)


@job(queue="email-send", name="test_overrunning_async_job", max_retries=0, time_limit_ms=300)
async def overrunning_async_job(payload: dict[str, Any], *, job_key: str) -> None:
    await asyncio.sleep(5)
    with _guard:
        _effects.append(job_key)


async def test_a_job_past_its_time_limit_is_stopped_and_recorded_as_such(settings) -> None:
    # The worker runs dramatiq's process-boot hooks, so TimeLimit's timer thread is running:
    # without it, the job would run on past its limit and past the ledger's lease.
    with InProcessWorker(settings, queues=["email-send"]) as worker:
        for actor in ("test_overrunning_job", "test_overrunning_async_job"):
            spec = JobSpec(actor=actor, queue="email-send", payload={}, key=f"{actor}-1")
            await _record_and_send(settings, spec)
        worker.wait_until_finished(timeout=20)
    for actor in ("test_overrunning_job", "test_overrunning_async_job"):
        status, attempts, last_error = await _job_row(settings, actor, f"{actor}-1")
        assert (status, attempts) == ("dead", 1)
        assert "TimeLimitExceeded" in last_error or "time limit" in last_error.lower()
        assert f"{actor}-1" not in _effects
