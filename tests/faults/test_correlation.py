"""One correlation id followed end to end across real processes (on the fault harness): the
request's response headers, the event's metadata, the job the event causes, the job's logs."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.faults.harness import Stack, wait_for


def test_a_sign_up_s_correlation_id_reaches_its_event_its_job_and_the_job_s_logs(
    deployment: Stack,
) -> None:
    deployment.serve()
    deployment.projector()
    worker = deployment.worker()
    wait_for(_reactor_ready(deployment), 30, "the e-mail reactor")
    correlation = f"trace-{uuid.uuid4().hex[:12]}"
    email = f"traced-{uuid.uuid4().hex[:6]}@example.com"
    response = httpx.post(
        f"{deployment.base_url}/api/auth/sign-up",
        json={
            "email": email,
            "password": "correct horse battery staple",
            "display_name": "Traced",
            "role": "listener",
        },
        headers={"X-Correlation-Id": correlation},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    assert response.headers["x-correlation-id"] == correlation
    request_id = response.headers["x-request-id"]
    assert request_id
    assert request_id != correlation

    with deployment.admin() as conn:
        rows = conn.execute(
            "SELECT type, metadata FROM lufy.events WHERE metadata->>'correlation_id' = %s",
            [correlation],
        ).fetchall()
    assert rows, "the sign-up's events do not carry the correlation id"
    assert all(metadata.get("request_id") == request_id for _, metadata in rows)

    def job_done() -> bool:
        with deployment.admin() as conn:
            row = conn.execute(
                "SELECT status FROM lufy.jobs WHERE correlation_id = %s", [correlation]
            ).fetchone()
        return row is not None and row[0] == "done"

    wait_for(job_done, 30, "the verification e-mail job")
    lines = [
        json.loads(line)
        for line in worker.log_path.read_text().splitlines()
        if line.startswith("{") and correlation in line
    ]
    assert lines, "the job's log lines do not carry the correlation id"
    assert all(line["correlation_id"] == correlation for line in lines)
    assert any(line.get("job") for line in lines)


def _reactor_ready(deployment: Stack):  # type: ignore[no-untyped-def]
    def ready() -> bool:
        with deployment.admin() as conn:
            row = conn.execute(
                "SELECT 1 FROM lufy.checkpoints WHERE name = 'accounts_emails'"
            ).fetchone()
        return row is not None

    return ready
