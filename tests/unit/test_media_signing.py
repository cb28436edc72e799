"""Stream tokens and upload tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from lufy.errors import AuthenticationError, PermissionDeniedError
from lufy.media.signing import (
    issue_stream_token,
    issue_upload_token,
    stream_key_id,
    verify_upload_token,
)

SECRET = "unit-test-secret-unit-test-secret-0123456789"
TRACK = uuid.uuid4()
USER = uuid.uuid4()


def test_a_stream_token_carries_sub_sid_jti_tier_and_exp_for_one_hour_under_its_kid() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    grant = uuid.uuid4()
    token, expires_at = issue_stream_token(
        SECRET, track_id=TRACK, subject=USER, grant_id=grant, tier="free", now=now
    )
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {
        "sub": str(USER),
        "sid": str(TRACK),
        "jti": str(grant),
        "tier": "free",
        "exp": int(expires_at.timestamp()),
    }
    assert expires_at - now == timedelta(hours=1)
    assert jwt.get_unverified_header(token) == {
        "alg": "HS256",
        "typ": "JWT",
        "kid": stream_key_id(SECRET),
    }
    assert stream_key_id(SECRET) != stream_key_id(SECRET + "x")


def test_a_stream_token_is_the_one_pyjwt_writes_for_the_same_claims_byte_for_byte() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    grant = uuid.uuid4()
    for subject, tier in ((USER, "premium"), (None, "free")):
        token, expires_at = issue_stream_token(
            SECRET, track_id=TRACK, subject=subject, grant_id=grant, tier=tier, now=now
        )
        claims = {
            "sub": str(subject) if subject else "anonymous",
            "sid": str(TRACK),
            "jti": str(grant),
            "tier": tier,
            "exp": int(expires_at.timestamp()),
        }
        headers = {"kid": stream_key_id(SECRET)}
        assert token == jwt.encode(claims, SECRET, algorithm="HS256", headers=headers)


def test_an_anonymous_stream_token_names_no_user() -> None:
    token, _ = issue_stream_token(
        SECRET, track_id=TRACK, subject=None, grant_id=uuid.uuid4(), tier="premium"
    )
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "anonymous"


def test_a_stream_token_refuses_an_unknown_tier() -> None:
    with pytest.raises(ValueError, match="tier"):
        issue_stream_token(
            SECRET,
            track_id=TRACK,
            subject=None,
            grant_id=uuid.uuid4(),
            tier="gold",  # type: ignore[arg-type]
        )


def test_an_upload_token_binds_key_type_and_size_to_one_upload() -> None:
    upload = uuid.uuid4()
    token = issue_upload_token(
        SECRET,
        artist_id=USER,
        upload_id=upload,
        key="uploads/t/source.mp3",
        content_type="audio/mpeg",
        size_bytes=1234,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    claims = verify_upload_token(SECRET, token, upload_id=upload)
    assert (claims.key, claims.content_type, claims.size_bytes) == (
        "uploads/t/source.mp3",
        "audio/mpeg",
        1234,
    )
    with pytest.raises(PermissionDeniedError):
        verify_upload_token(SECRET, token, upload_id=uuid.uuid4())
    # A stream token is not an upload token.
    stream, _ = issue_stream_token(
        SECRET, track_id=TRACK, subject=USER, grant_id=uuid.uuid4(), tier="premium"
    )
    with pytest.raises(AuthenticationError):
        verify_upload_token(SECRET, stream, upload_id=upload)
