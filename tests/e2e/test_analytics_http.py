"""Analytics through the real app: bearer tokens, the listener is the signed-in user."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from lufy.privacy.sealing import Keyring, is_sealed
from lufy.testing.analytics import LocalProjector, insert_track, issue_grant
from tests.helpers.accounts import create_user
from tests.helpers.http import api_client


async def test_a_signed_in_listener_plays_and_the_artist_sees_it_on_the_dashboard(
    container, admin_conn, store
) -> None:
    await container.db.pool.wait()
    artist = await create_user(container, role="artist")
    listener = await create_user(container, role="listener")
    track = await insert_track(admin_conn, artist.id, title="Morning")
    started = datetime.now(UTC) - timedelta(minutes=3)
    session = f"s-{uuid.uuid4().hex[:8]}"
    # What GET /api/music/tracks/{id}/stream appends for this listener before playing.
    grant = await issue_grant(
        container.db, store, track, listener_id=listener.id, at=started - timedelta(seconds=1)
    )
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "occurred_at": (started + timedelta(seconds=offset)).isoformat(),
            "session_id": session,
            "anonymous_id": "device-cookie-1",
            "track_id": str(track),
            "listened_ms": offset * 1000,
            "source": "search",
            "grant_id": str(grant),
        }
        for kind, offset in (("playback.started", 0), ("playback.progress", 60))
    ]
    async with api_client(container) as client:
        response = await client.post(
            "/api/analytics/events",
            content=json.dumps({"events": events}),
            headers={**listener.headers, "content-type": "text/plain"},
        )
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 2, response.text
        cur = await admin_conn.execute(
            "SELECT DISTINCT data->>'listener_id' FROM lufy.events WHERE stream_type = 'analytics'"
        )
        stored = [row[0] for row in await cur.fetchall()]
        # Stored sealed (privacy): it opens to the signed-in user.
        assert len(stored) == 1
        assert is_sealed(stored[0])
        async with container.db.transaction(role="system") as conn:
            assert await Keyring().open(conn, stored[0]) == str(listener.id)

        await LocalProjector(container.db, store).run()
        overview = await client.get(
            "/api/dashboard/overview", params={"range": "24h"}, headers=artist.headers
        )
        assert overview.status_code == 200, overview.text
        body = overview.json()
        assert (body["streams"], body["listeners"], body["listen_seconds"]) == (1, 1, 60)
        tracks = (await client.get("/api/dashboard/tracks", headers=artist.headers)).json()
        assert tracks["rows"][0]["title"] == "Morning"
        breakdown = await client.get(
            "/api/dashboard/breakdown", params={"dimension": "source"}, headers=artist.headers
        )
        assert breakdown.json()["rows"] == [{"key": "search", "streams": 1, "listeners": 1}]
        denied = await client.get("/api/dashboard/overview", headers=listener.headers)
        assert denied.status_code == 403
        anonymous = await client.get("/api/dashboard/overview")
        assert anonymous.status_code == 401
