"""Graceful shutdown on SIGTERM for the API, a worker and the projector, each under load:
in-flight work finishes or is handed back, and the process exits within 10 seconds."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid

import httpx

from tests.faults.harness import Load, Stack, wait_for
from tests.faults.test_kill import (
    _register,
    has_checkpoint,
    job_states,
    make_track,
    pending,
    playback_ingest,
    sessions_applied,
)
from tests.faults.test_postgres_restart import _ingest

SHUTDOWN_BUDGET = 10.0


def stop_in_time(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=SHUTDOWN_BUDGET)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {SHUTDOWN_BUDGET}s after SIGTERM") from None


def test_the_api_stops_within_ten_seconds_of_sigterm_answering_what_it_accepted(
    deployment: Stack,
) -> None:
    api = deployment.serve()
    with Load(deployment.base_url, _ingest, threads=4) as load:
        wait_for(lambda: load.statuses().count(202) >= 30, 30, "traffic to flow")
        code = stop_in_time(api.proc)
    assert code == 0, api.tail()
    statuses = load.statuses()
    # Every answer that came is a success; the rest could not connect (status 0).
    assert set(statuses) <= {202, 0}, sorted(set(statuses))
    acknowledged = [eid for _, status, kept in load.results if status == 202 for eid in kept]
    with deployment.admin() as conn:
        stored = {
            str(row[0])
            for row in conn.execute(
                "SELECT event_id FROM lufy.events WHERE event_id = ANY(%s::uuid[])",
                [acknowledged],
            )
        }
    assert set(acknowledged) <= stored, "an acknowledged event was lost"
    assert not _answers(deployment.base_url)


def _answers(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/healthz", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def test_the_projector_stops_within_ten_seconds_of_sigterm_and_its_successor_resumes(
    deployment: Stack,
) -> None:
    track_id = make_track(deployment)
    deployment.serve()
    projector = deployment.projector()
    with Load(deployment.base_url, playback_ingest(track_id), threads=3) as load:
        wait_for(lambda: sessions_applied(deployment, track_id) > 0, 30, "the projector")
        assert stop_in_time(projector.proc) == 0, projector.tail()
        deployment.projector("projector-2")
        wait_for(lambda: load.statuses().count(202) >= 40, 30, "more sessions")
    sessions = [kept for _, status, kept in load.results if status == 202]
    assert set(load.statuses()) == {202}
    wait_for(lambda: pending(deployment, "analytics") == 0, 60, "the successor to catch up")
    with deployment.admin() as conn:
        rollup = conn.execute(
            "SELECT count(*), (SELECT coalesce(sum(starts), 0) FROM lufy.track_rollup_15m "
            "WHERE track_id = %s) FROM lufy.playback_sessions WHERE track_id = %s",
            [track_id, track_id],
        ).fetchone()
    assert rollup == (len(sessions), len(sessions))


def test_a_worker_stops_within_ten_seconds_of_sigterm_and_hands_back_what_it_had(
    deployment: Stack,
) -> None:
    deployment.projector()
    worker = deployment.worker()
    wait_for(lambda: has_checkpoint(deployment, "accounts_emails"), 30, "the e-mail reactor")
    emails = [f"term-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(30)]
    asyncio.run(_register(deployment, emails))
    wait_for(lambda: job_states(deployment, "email-send").get("done", 0) >= 1, 30, "jobs to run")
    assert stop_in_time(worker.proc) == 0, worker.tail()
    deployment.worker("worker-2")

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
    assert sorted(recipients) == sorted(emails)
    assert set(recipients.values()) == {1}
