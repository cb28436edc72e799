"""Entitlements change what a listener hears: with Stripe configured, a premium subscriber's
master playlist lists the 256 kbit/s rendition and a free listener's does not (and the edge
refuses that rendition to the free token); a cancelled subscription keeps premium until the end
of its paid period."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from lufy.bootstrap import bootstrap
from lufy.catalog.processing import process_track
from lufy.settings import Settings
from lufy.web.app import create_app
from tests.helpers.accounts import TestUser, create_user
from tests.helpers.media import make_tone
from tests.helpers.stripe_fake import StripeFake, with_stripe

WEBHOOK = "/api/payments/webhook"


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    with StripeFake() as server:
        yield server


@pytest.fixture
def pay_settings(settings: Settings, fake: StripeFake) -> Settings:
    return with_stripe(settings, fake)


async def _published_track(
    client: AsyncTestClient[Any], settings: Settings, artist: TestUser, tmp_path: Path
) -> str:
    tone = make_tone(tmp_path / "tone.wav", seconds=3)
    data = tone.read_bytes()
    ticket = (
        await client.post(
            "/api/music/uploads",
            json={
                "filename": "tone.wav",
                "content_type": "audio/wav",
                "size_bytes": len(data),
                "title": "Tone",
            },
            headers=artist.headers,
        )
    ).json()
    url = ticket["url"].removeprefix("http://testserver.local")
    assert (await client.put(url, content=data, headers=ticket["headers"])).status_code == 200
    done = await client.post(
        f"/api/music/uploads/{ticket['upload_id']}/complete", headers=artist.headers
    )
    assert done.status_code == 202, done.text
    container = bootstrap(settings)
    await container.start()
    try:
        track_id = uuid.UUID(ticket["track_id"])
        assert await process_track(container.catalog, track_id, "pay") == "ready"
    finally:
        await container.stop()
    published = await client.post(f"/api/music/tracks/{track_id}/publish", headers=artist.headers)
    assert published.status_code == 200, published.text
    return str(track_id)


async def _master(
    client: AsyncTestClient[Any], settings: Settings, user: TestUser, track_id: str
) -> tuple[str, str, str]:
    grant = await client.get(f"/api/music/tracks/{track_id}/stream", headers=user.headers)
    assert grant.status_code == 200, grant.text
    token = grant.json()["token"]
    tier = jwt.decode(token, settings.jwt_secret, algorithms=["HS256"])["tier"]
    master = await client.get(f"/media/hls/{token}/{track_id}/master.m3u8")
    assert master.status_code == 200, master.text
    return tier, master.text, token


async def test_a_premium_subscriber_hears_256k_and_a_free_listener_does_not(
    pay_settings: Settings, fake: StripeFake, tmp_path: Path
) -> None:
    app_container = bootstrap(pay_settings)
    async with AsyncTestClient(app=create_app(app_container)) as client:
        artist = await create_user(app_container, role="artist")
        free = await create_user(app_container, role="listener")
        premium = await create_user(app_container, role="listener")
        track_id = await _published_track(client, pay_settings, artist, tmp_path)
        sub = fake.subscription(customer="cus_premium", user_id=str(premium.id))
        body, headers = fake.signed(fake.event("customer.subscription.created", sub))
        assert (await client.post(WEBHOOK, content=body, headers=headers)).status_code == 200

        tier, master, _ = await _master(client, pay_settings, premium, track_id)
        assert tier == "premium"
        assert "256k/index.m3u8" in master
        assert "128k/index.m3u8" in master

        tier, master, token = await _master(client, pay_settings, free, track_id)
        assert tier == "free"
        assert "256k" not in master
        assert "64k/index.m3u8" in master
        assert "128k/index.m3u8" in master
        refused = await client.get(f"/media/hls/{token}/{track_id}/256k/index.m3u8")
        assert refused.status_code == 403


async def test_a_cancelled_subscription_keeps_premium_until_its_period_ends(
    pay_settings: Settings, fake: StripeFake, tmp_path: Path
) -> None:
    app_container = bootstrap(pay_settings)
    async with AsyncTestClient(app=create_app(app_container)) as client:
        artist = await create_user(app_container, role="artist")
        listener = await create_user(app_container, role="listener")
        track_id = await _published_track(client, pay_settings, artist, tmp_path)
        period_end = datetime.now(UTC) + timedelta(days=10)
        sub = fake.subscription(customer="cus_cancel", user_id=str(listener.id))
        sub.update(cancel_at_period_end=True, current_period_end=int(period_end.timestamp()))
        body, headers = fake.signed(fake.event("customer.subscription.updated", sub))
        assert (await client.post(WEBHOOK, content=body, headers=headers)).status_code == 200
        tier, master, _ = await _master(client, pay_settings, listener, track_id)
        assert tier == "premium"
        assert "256k/index.m3u8" in master

        ended = dict(
            sub, status="canceled", current_period_end=int(datetime.now(UTC).timestamp()) - 60
        )
        body, headers = fake.signed(fake.event("customer.subscription.deleted", ended))
        assert (await client.post(WEBHOOK, content=body, headers=headers)).status_code == 200
        tier, master, _ = await _master(client, pay_settings, listener, track_id)
        assert tier == "free"
        assert "256k" not in master
