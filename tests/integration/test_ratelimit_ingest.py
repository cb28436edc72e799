"""Analytics ingestion has its own wider policy: beacons from one NAT address are not 429s."""

from __future__ import annotations

from lufy.bootstrap import Container
from tests.helpers.http import api_client


async def test_a_guest_may_send_more_batches_than_the_guest_limit(container: Container) -> None:
    guest_limit = container.settings.rate_limit_guest.limit
    async with api_client(container) as client:
        statuses = [
            (await client.post("/api/analytics/events", json={"events": []})).status_code
            for _ in range(guest_limit + 5)
        ]
        last = await client.post("/api/analytics/events", json={"events": []})
    assert 429 not in statuses
    assert '"ingest";q=600;w=60' in last.headers["RateLimit-Policy"]
