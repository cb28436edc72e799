"""Redis restarted under load: ingestion and reads keep working (ordinary routes' rate limiting
fails open, and says so in the metrics); jobs enqueued before and during the outage all run."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.harness import Load, Stack, wait_for
from tests.faults.test_kill import _register, has_checkpoint, job_states
from tests.faults.test_postgres_restart import _ingest


def _mixed(client: httpx.Client, i: int) -> tuple[int, Any]:
    if i % 2:
        return _ingest(client, i)
    response = client.get("/api/music/tracks")
    return response.status_code, response.text[:200]


def _fail_opens(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lufy_rate_limit_decisions_total"
        and sample.labels.get("outcome") == "fail_open"
    )


def test_a_redis_restart_under_load_keeps_ingestion_and_reads_up_and_loses_no_job(
    deployment: Stack,
) -> None:
    deployment.serve()
    deployment.projector()
    worker = deployment.worker()
    wait_for(lambda: has_checkpoint(deployment, "accounts_emails"), 30, "the e-mail reactor")
    worker.stop()  # jobs now wait in Redis, as a busy queue's would
    before = [f"before-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(10)]
    during = [f"during-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(10)]
    asyncio.run(_register(deployment, before))
    wait_for(
        lambda: job_states(deployment, "email-send").get("pending", 0) >= len(before),
        30,
        "the first jobs to be queued",
    )

    with Load(deployment.base_url, _mixed, threads=4) as load:
        wait_for(lambda: len(load.results) >= 40, 30, "traffic to flow")
        deployment.redis.stop()
        down_at = time.monotonic()
        asyncio.run(_register(deployment, during))  # the reactor cannot reach Redis now
        wait_for(lambda: len(load.since(down_at)) >= 40, 30, "traffic while Redis is down")
        fail_opens = _fail_opens(deployment.base_url)
        deployment.redis.start()
        up_at = time.monotonic()
        wait_for(lambda: len(load.since(up_at)) >= 40, 30, "traffic after the restart")

    statuses = load.statuses()
    assert set(statuses) <= {200, 202}, [r[1:] for r in load.results if r[1] not in (200, 202)][:5]
    assert fail_opens > 0, "rate limiting should have failed open, and counted it"

    # Jobs the reactor could not send are re-sent by the sweeper once they are older than its
    # grace period (30 s): let that time pass at once rather than wait for it.
    with deployment.admin() as conn:
        conn.execute(
            "UPDATE lufy.jobs SET created_at = created_at - interval '1 hour' "
            "WHERE status = 'pending' AND enqueued_at IS NULL"
        )
    deployment.worker("worker-2")
    emails = before + during

    def all_done() -> bool:
        states = job_states(deployment, "email-send")
        return states.get("done", 0) == len(emails) == sum(states.values())

    wait_for(all_done, 60, "every job", on_timeout=lambda: job_states(deployment, "email-send"))
    recipients: dict[str, int] = {}
    for path in (deployment.workdir / "mail").glob("*.json"):
        text = path.read_text()
        for email in emails:
            if email in text:
                recipients[email] = recipients.get(email, 0) + 1
    assert sorted(recipients) == sorted(emails), "a job was lost"
    assert set(recipients.values()) == {1}, "a job ran twice"
