"""Anonymous clients cannot fill the never-deleted log: properties are capped per event, and
ingestion has a per-caller budget of body bytes, checked in the rate limiter's one atomic
Redis call (429 problem+json with Retry-After once spent)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from lufy.bootstrap import Container
from lufy.testing.analytics import insert_artist, insert_track
from lufy.web.ratelimit import INGEST_BYTES
from tests.helpers.http import api_client

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
BATCH_BYTES = 1_048_000  # just under the 1 MiB a batch may have


def padded_batch(size: int) -> bytes:
    """An empty batch padded to exactly `size` bytes (unknown top-level fields are ignored)."""
    head = b'{"events": [], "pad": "'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post(
        "/api/analytics/events",
        content=body,
        headers={"content-type": "application/json", "user-agent": CHROME},
    )


async def test_a_guest_sending_megabyte_batches_is_stopped_by_the_byte_budget_with_a_429(
    container: Container,
) -> None:
    full = INGEST_BYTES // BATCH_BYTES
    assert full >= 2
    async with api_client(container, client_ip="198.51.100.7") as client:
        admitted = [await post(client, padded_batch(BATCH_BYTES)) for _ in range(full)]
        refused = await post(client, padded_batch(BATCH_BYTES))
        small = await post(client, padded_batch(200))
    assert [r.status_code for r in admitted] == [202] * full
    assert (
        '"ingest-bytes";q=8388608;w=600;qu="content-bytes"'
        in (admitted[0].headers["RateLimit-Policy"])
    )
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["Retry-After"]) >= 1
    problem = refused.json()
    assert problem["status"] == 429
    assert problem["policy"] == "ingest-bytes"
    assert "8388608 bytes of request bodies per 600 s" in problem["detail"]
    assert '"ingest-bytes";r=0;' in refused.headers["RateLimit"]
    # The refused batch was not charged: what is left still takes a small one.
    assert small.status_code == 202, small.text


async def test_one_guest_spending_its_byte_budget_leaves_another_guests_untouched(
    container: Container,
) -> None:
    full = INGEST_BYTES // BATCH_BYTES
    async with api_client(container, client_ip="198.51.100.8") as greedy:
        for _ in range(full + 1):
            last = await post(greedy, padded_batch(BATCH_BYTES))
    assert last.status_code == 429
    async with api_client(container, client_ip="198.51.100.9") as other:
        response = await post(other, padded_batch(BATCH_BYTES))
    assert response.status_code == 202
    remaining = response.headers["RateLimit"]
    assert f'"ingest-bytes";r={INGEST_BYTES - BATCH_BYTES};' in remaining


async def test_a_body_over_one_mebibyte_is_refused_before_it_is_counted(
    container: Container,
) -> None:
    async with api_client(container, client_ip="198.51.100.10") as client:
        big = await post(client, padded_batch(1024 * 1024 + 1))
        after = await post(client, padded_batch(BATCH_BYTES))
    assert big.status_code == 413
    assert big.headers["content-type"].startswith("application/problem+json")
    assert after.status_code == 202
    assert f'"ingest-bytes";r={INGEST_BYTES - BATCH_BYTES};' in after.headers["RateLimit"]


def _event(track: uuid.UUID, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "page.viewed" if not fields.pop("playback", False) else "playback.started",
        "occurred_at": datetime.now(UTC).isoformat(),
        "session_id": "s-" + uuid.uuid4().hex[:8],
        "anonymous_id": "anon-1",
        "track_id": str(track),
        **fields,
    }


async def test_an_event_with_oversized_or_overfull_properties_is_rejected_alone(
    container: Container, admin_conn: Any
) -> None:
    artist = await insert_artist(admin_conn)
    track = await insert_track(admin_conn, artist)
    events = [
        _event(track, properties={f"k{i}": i for i in range(33)}),
        _event(track, properties={"blob": "x" * 4096}),
        _event(track, properties={f"k{i}": i for i in range(32)}),
        _event(track, properties={"blob": "x" * 4000}),
    ]
    async with api_client(container, client_ip="198.51.100.11") as client:
        response = await client.post(
            "/api/analytics/events",
            content=json.dumps({"events": events}),
            headers={"content-type": "application/json", "user-agent": CHROME},
        )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [
        {"index": 0, "reason": "properties: at most 32 keys per event; this one has 33"},
        {
            "index": 1,
            "reason": "properties: at most 4096 bytes (as JSON) per event; this one has 4107",
        },
    ]
    cur = await admin_conn.execute(
        "SELECT count(*) FROM lufy.events WHERE event_id = ANY(%s::uuid[])",
        [[e["event_id"] for e in events[:2]]],
    )
    assert (await cur.fetchone())[0] == 0
