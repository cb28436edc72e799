"""PostgreSQL restarted under load: 503 with Retry-After while it is down, service again within
seconds without restarting Lufy, and no event that was acknowledged is lost."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.faults.harness import Load, PgCluster, Stack, wait_for


def _batch(n: int = 5) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    session = uuid.uuid4().hex
    return [
        {
            "event_id": str(uuid.uuid4()),
            "type": "page.viewed",
            "occurred_at": now,
            "session_id": session,
            "anonymous_id": f"anon-{session[:8]}",
            "properties": {"path": "/fault"},
        }
        for _ in range(n)
    ]


def _mixed(client: httpx.Client, i: int) -> tuple[int, Any]:
    """Ingestion (writes), the public track list (reads) and sign-ins (reads + argon2)."""
    if i % 3 == 1:
        response = client.get("/api/music/tracks")
    elif i % 3 == 2:
        # A new address and e-mail each time, so sign-in's own limits never answer first.
        response = client.post(
            "/api/auth/sign-in",
            json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "not it"},
            headers={"X-Forwarded-For": f"10.0.{i % 250}.{i // 250 % 250 + 1}"},
        )
        if response.status_code == 401:  # no such account: the database answered
            return 200, None
    else:
        return _ingest(client, i)
    if response.status_code == 503:
        return 503, (dict(response.headers), response.text)
    return response.status_code, None


def _ingest(client: httpx.Client, _i: int) -> tuple[int, Any]:
    events = _batch()
    response = client.post("/api/analytics/events", json={"events": events})
    if response.status_code == 202:
        rejected = {r["index"] for r in response.json()["rejected"]}
        kept = [e["event_id"] for i, e in enumerate(events) if i not in rejected]
        return 202, kept
    return response.status_code, (dict(response.headers), response.text)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_postgres_restart_under_load_gives_503s_then_recovers_without_losing_events(
    deployment: Stack, fault_pg: PgCluster, mode: str
) -> None:
    """`fast` is an operator's restart; `immediate` is a crash (recovery replays the WAL)."""
    api = deployment.serve()
    with Load(deployment.base_url, _mixed, threads=4) as load:
        wait_for(lambda: load.statuses().count(202) >= 20, 30, "traffic to flow")
        fault_pg.stop(mode)
        down_at = time.monotonic()
        wait_for(
            lambda: 503 in [s for _, s, _ in load.since(down_at)],
            30,
            "a 503 while down",
            on_timeout=lambda: (len(load.since(down_at)), fault_pg.is_up()),
        )
        time.sleep(1.0)
        fault_pg.start()
        up_at = time.monotonic()
        wait_for(
            lambda: [s for _, s, _ in load.since(up_at)].count(202) >= 10,
            20,
            "ingestion to succeed again after the restart",
        )
    assert api.alive(), "the API must survive the outage without a restart"

    statuses = load.statuses()
    assert set(statuses) <= {200, 202, 503}, sorted(set(statuses))
    unavailable = [kept for _, status, kept in load.results if status == 503]
    headers, body = unavailable[0]
    assert headers["content-type"].startswith("application/problem+json")
    assert int(headers["retry-after"]) > 0
    assert '"status":503' in body.replace(" ", "")

    acknowledged = [
        eid for _, status, kept in load.results if status == 202 and kept for eid in kept
    ]
    with deployment.admin() as conn:
        stored = {
            str(row[0])
            for row in conn.execute(
                "SELECT event_id FROM lufy.events WHERE event_id = ANY(%s::uuid[])",
                [acknowledged],
            )
        }
    assert len(acknowledged) > 0
    assert set(acknowledged) <= stored, "an acknowledged event was lost"

    after = httpx.get(f"{deployment.base_url}/readyz", timeout=5)
    assert after.status_code == 200, after.text
