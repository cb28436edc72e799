"""A database one expand migration ahead of this build still serves this build.

During a zero-downtime deploy the new release migrates first; the old release's processes keep
serving until they are replaced. The migration below is test-only (it ships in no build): a new
table and new nullable columns on read models, the expand half of docs/operations.md's rule.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from lufy.bootstrap import Container
from lufy.testing.analytics import LocalProjector, insert_track
from tests.helpers.accounts import create_user
from tests.helpers.http import api_client

EXPAND = Path(__file__).parent / "expand" / "9000_expand_test_only.sql"


async def migrate_one_step_past_the_build(admin: psycopg.AsyncConnection[Any]) -> str:
    text = EXPAND.read_text()
    async with admin.transaction():
        await admin.execute(text.encode())
        await admin.execute(
            "INSERT INTO lufy.schema_migrations (filename, checksum) VALUES (%s, %s)",
            [EXPAND.name, hashlib.sha256(text.encode()).hexdigest()],
        )
    return EXPAND.name


async def test_the_current_build_keeps_serving_a_database_one_expand_migration_ahead(
    container: Container, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    ahead = await migrate_one_step_past_the_build(admin_conn)
    artist = await create_user(container, role="artist")
    track = await insert_track(admin_conn, artist.id, title="Expanded")

    async with api_client(container) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["ahead_of_build"] == [ahead]

        # Sign-up and sign-in write and read the accounts read model (now with a new column).
        email = f"listener-{uuid.uuid4().hex[:8]}@example.com"
        signed_up = await client.post(
            "/api/auth/sign-up",
            json={
                "email": email,
                "password": "a long enough passphrase 42",
                "display_name": "Lis Tener",
                "role": "listener",
            },
        )
        assert signed_up.status_code == 201, signed_up.text
        signed_in = await client.post(
            "/api/auth/sign-in",
            json={"email": email, "password": "a long enough passphrase 42"},
        )
        assert signed_in.status_code == 200, signed_in.text
        listener = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        assert (await client.get("/api/auth/session", headers=listener)).status_code == 200

        # Ingestion appends to the log; the projections fill playback_sessions (new column).
        start = datetime.now(UTC) - timedelta(minutes=3)
        session = "s-" + uuid.uuid4().hex[:8]
        events = [
            {
                "event_id": str(uuid.uuid4()),
                "type": kind,
                "occurred_at": (start + timedelta(seconds=offset)).isoformat(),
                "session_id": session,
                "track_id": str(track),
                "listened_ms": listened,
            }
            for kind, offset, listened in (
                ("playback.started", 0, 0),
                ("playback.progress", 45, 45000),
            )
        ]
        ingested = await client.post(
            "/api/analytics/events",
            content=json.dumps({"events": events}),
            headers={"content-type": "application/json", **listener},
        )
        assert ingested.status_code == 202, ingested.text
        assert ingested.json()["accepted"] == 2
        applied = await LocalProjector(container.db, container.store).run()
        assert applied >= 2

        # The dashboard reads the read models the expand migration widened.
        overview = await client.get(
            "/api/dashboard/overview", params={"range": "7d"}, headers=artist.headers
        )
        assert overview.status_code == 200, overview.text
        assert overview.json()["listen_seconds"] == 45
        tracks = await client.get("/api/music/tracks", headers=artist.headers)
        assert tracks.status_code == 200, tracks.text
        assert str(track) in tracks.text

    # What the current build wrote left the newer release's columns untouched (NULL).
    cur = await admin_conn.execute(
        "SELECT client_build FROM lufy.playback_sessions WHERE session_id = %s", [session]
    )
    assert await cur.fetchall() == [(None,)]
