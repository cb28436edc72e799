"""`CloudFront-Viewer-Country` is believed only from `TRUSTED_PROXIES`: any client can send it,
and a forged one would put its plays in another country's breakdown."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from lufy.bootstrap import bootstrap
from lufy.settings import Settings
from lufy.testing.analytics import insert_artist, insert_track, principal_app

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"


async def _countries(settings: Settings, admin_conn: Any, peer: str) -> list[str | None]:
    artist = await insert_artist(admin_conn)
    track = await insert_track(admin_conn, artist)
    container = bootstrap(settings)
    await container.start()
    await container.db.pool.wait()
    body = {
        "events": [
            {
                "event_id": str(uuid.uuid4()),
                "type": "playback.started",
                "occurred_at": datetime.now(UTC).isoformat(),
                "session_id": "s-1",
                "anonymous_id": "anon-1",
                "track_id": str(track),
            }
        ]
    }
    try:
        transport = httpx.ASGITransport(app=principal_app(container), client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.post(
                "/api/analytics/events",
                content=json.dumps(body),
                headers={
                    "content-type": "application/json",
                    "user-agent": BROWSER,
                    "cloudfront-viewer-country": "KP",
                },
            )
            assert response.status_code == 202, response.text
            assert response.json()["accepted"] == 1
    finally:
        await container.stop()
    cur = await admin_conn.execute(
        "SELECT data->>'country' FROM lufy.events WHERE type = 'playback.started'"
    )
    return [row[0] for row in await cur.fetchall()]


async def test_a_client_forging_cloudfront_viewer_country_does_not_choose_its_country(
    settings: Settings, admin_conn: Any
) -> None:
    # No proxies configured: the header came from the client itself.
    assert await _countries(settings, admin_conn, "203.0.113.7") == [None]


async def test_a_client_outside_the_trusted_proxies_cannot_set_the_country(
    settings: Settings, admin_conn: Any
) -> None:
    trusting = settings.model_copy(update={"TRUSTED_PROXIES": "10.0.0.0/8"})
    assert await _countries(trusting, admin_conn, "203.0.113.7") == [None]


async def test_the_country_from_a_trusted_proxy_is_kept(
    settings: Settings, admin_conn: Any
) -> None:
    trusting = settings.model_copy(update={"TRUSTED_PROXIES": "10.0.0.0/8"})
    assert await _countries(trusting, admin_conn, "10.1.2.3") == ["KP"]
