"""Privacy: the export of everything Lufy holds about a person (HTTP and `lufy users`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from lufy.analytics.events import ArtistFollowed, PlaybackCompleted, PlaybackStarted, TrackLiked
from lufy.bootstrap import Container, bootstrap
from lufy.eventstore import NewEvent
from lufy.settings import Settings
from lufy.web.app import create_app
from tests.helpers.accounts import create_user
from tests.integration.test_accounts_cli import run_cli


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(bootstrap(settings))) as c:
        yield c


async def _world(
    container: Container, admin_conn: psycopg.AsyncConnection[Any]
) -> tuple[Any, Any, uuid.UUID]:
    listener = await create_user(container, display_name="Lena Listener")
    artist = await create_user(container, role="artist", display_name="Arto Artist")
    track_id = uuid.uuid4()
    await admin_conn.execute(
        "INSERT INTO lufy.tracks (id, artist_id, title, status, published, created_at, "
        "updated_at) VALUES (%s, %s, 'Night Song', 'ready', true, now(), now())",
        [track_id, artist.id],
    )
    common = {
        "listener_key": "k" * 16,
        "listener_id": listener.id,
        "track_id": track_id,
        "artist_id": artist.id,
    }
    events = [
        PlaybackStarted(session_id="s-1", listened_ms=0, **common),
        PlaybackCompleted(session_id="s-1", listened_ms=95_000, **common),
        TrackLiked(session_id="s-1", **common),
        ArtistFollowed(session_id="s-1", **common),
    ]
    async with container.db.transaction(role="system") as conn:
        await container.store.append_bulk(
            conn,
            [
                NewEvent(
                    event=e,
                    occurred_at=datetime(2026, 12, 1, 12, i, tzinfo=UTC),
                    stream_type="analytics",
                    stream_id="s-1",
                )
                for i, e in enumerate(events)
            ],
        )
    await admin_conn.execute(
        "INSERT INTO lufy.payment_customers VALUES ('cus_1', %s, now())", [listener.id]
    )
    await admin_conn.execute(
        "INSERT INTO lufy.payment_subscriptions (subscription_id, customer_id, user_id, status, "
        "price_id, current_period_end, as_of, as_of_rank, stripe_event_id) VALUES "
        "('sub_1', 'cus_1', %s, 'active', 'price_p', now(), now(), 0, 'evt_1')",
        [listener.id],
    )
    await admin_conn.execute(
        "INSERT INTO lufy.payment_ledger VALUES ('evt_2', 'payment', 'in_1', 'cus_1', 499, "
        "'eur', now())"
    )
    return listener, artist, track_id


async def test_the_export_holds_profile_sessions_playback_likes_follows_and_payments(
    container: Container,
    client: AsyncTestClient[Any],
    admin_conn: psycopg.AsyncConnection[Any],
) -> None:
    listener, artist, track_id = await _world(container, admin_conn)
    response = await client.get("/api/auth/account/export", headers=listener.headers)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["format"] == "lufy.export/v1"
    assert doc["profile"]["email"] == listener.email
    assert doc["profile"]["display_name"] == "Lena Listener"
    assert doc["profile"]["has_password"] is True
    assert [s["ip_prefix"] for s in doc["sessions"]] == ["127.0.0.0/24"]
    assert doc["sessions"][0]["device"]
    assert [h["type"] for h in doc["account_history"]] == ["accounts.user_registered"]
    [session] = doc["playback_sessions"]
    assert session["session_id"] == "s-1"
    assert session["track_id"] == str(track_id)
    assert session["listened_ms"] == 95_000
    assert session["completed"] is True
    assert [e["type"] for e in doc["likes_and_follows"]] == ["track.liked", "artist.followed"]
    assert [(s["id"], s["status"]) for s in doc["subscriptions"]] == [("sub_1", "active")]
    assert [(p["kind"], p["amount_minor"], p["currency"]) for p in doc["payments"]] == [
        ("payment", 499, "eur")
    ]
    assert doc["tracks"] == []
    assert "password_hash" not in response.text
    assert "argon2" not in response.text

    artist_doc = (await client.get("/api/auth/account/export", headers=artist.headers)).json()
    assert [t["title"] for t in artist_doc["tracks"]] == ["Night Song"]
    assert artist_doc["playback_sessions"] == []
    assert (await client.get("/api/auth/account/export")).status_code == 401


async def test_operators_export_and_forget_a_person_by_address_or_id(
    container: Container, settings: Settings, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    listener, _artist, _track = await _world(container, admin_conn)
    exported = run_cli(settings, "users", "export", listener.email, stdin="")
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(exported.stdout)
    assert doc["profile"]["id"] == str(listener.id)
    assert len(doc["playback_sessions"]) == 1

    refused = run_cli(settings, "users", "forget", str(listener.id), stdin="n\n")
    assert refused.returncode == 1
    forgot = run_cli(settings, "users", "forget", str(listener.id), "--yes", stdin="")
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.strip() == str(listener.id)
    again = run_cli(settings, "users", "forget", str(listener.id), "--yes", stdin="")
    assert again.returncode == 0, again.stderr
    assert "already erased" in again.stderr

    after = json.loads(run_cli(settings, "users", "export", str(listener.id), stdin="").stdout)
    assert after["profile"]["email"] is None
    assert after["profile"]["erased_at"] is not None
    assert after["account_history"][-1]["type"] == "accounts.user_erased"

    unknown = run_cli(settings, "users", "forget", "nobody@example.com", "--yes", stdin="")
    assert unknown.returncode == 1
    assert "no account" in unknown.stderr
    bad = run_cli(settings, "users", "export", "not an address", stdin="")
    assert bad.returncode == 1
    assert bad.stderr.count("\n") <= 2


async def test_guessing_the_password_through_account_deletion_is_rate_limited(
    container: Container, client: AsyncTestClient[Any]
) -> None:
    user = await create_user(container)
    statuses = []
    for _ in range(11):
        response = await client.request(
            "DELETE", "/api/auth/account", json={"password": "a wrong guess"}, headers=user.headers
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    assert 'account-delete-ip";q=10' in response.headers["RateLimit-Policy"]
