"""With CloudFront configured, the stream URL is CloudFront-signed for the whole track."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lufy.bootstrap import Container
from lufy.catalog.processing import process_track
from lufy.catalog.schemas import UploadCreate
from lufy.catalog.service import CatalogService
from lufy.media.signing import verify_cloudfront_url, verify_stream_token
from lufy.media.storage import MemoryStorage
from lufy.settings import Settings
from lufy.web.auth import Principal
from tests.helpers.accounts import create_user
from tests.helpers.media import make_tone


async def test_the_stream_url_is_a_cloudfront_url_the_public_key_verifies(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    configured = settings.model_copy(
        update={
            "CLOUDFRONT_DOMAIN": "media.example.net",
            "CLOUDFRONT_KEY_PAIR_ID": "KTESTKEYPAIR",
            "CLOUDFRONT_PRIVATE_KEY": pem,
        }
    )
    service = CatalogService(
        db=container.db, store=container.store, storage=MemoryStorage(), settings=configured
    )
    user = await create_user(container, role="artist")
    artist = Principal(user_id=user.id, role="artist", session_id=user.session_id)
    tone = make_tone(tmp_path / "t.wav", seconds=2)
    data = tone.read_bytes()
    ticket = await service.request_upload(
        artist,
        UploadCreate(filename="t.wav", content_type="audio/wav", size_bytes=len(data), title="t"),
    )
    service.storage.put_bytes(
        f"uploads/{ticket.track_id}/source.wav", data, content_type="audio/wav"
    )
    await service.complete_upload(artist, ticket.upload_id)
    assert await process_track(service, ticket.track_id, "cf") == "ready"

    grant = await service.authorize_stream(artist, ticket.track_id)
    assert grant.url.startswith(f"https://media.example.net/hls/{ticket.track_id}/master.m3u8?")
    policy = verify_cloudfront_url(grant.url, public)
    statement = policy["Statement"][0]
    assert statement["Resource"] == f"https://media.example.net/hls/{ticket.track_id}/*"
    assert statement["Condition"]["DateLessThan"]["AWS:EpochTime"] == int(
        grant.expires_at.timestamp()
    )
    assert grant.expires_at > datetime.now(UTC)
    # The token is issued too, for players and for the local path.
    claims = verify_stream_token(configured.jwt_secret, grant.token, track_id=ticket.track_id)
    assert claims.subject == str(user.id)
    assert uuid.UUID(str(claims.track_id)) == ticket.track_id
