"""Stream tokens, upload tokens and CloudFront signed URLs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lufy.errors import AuthenticationError, PermissionDeniedError
from lufy.media.signing import (
    cloudfront_signed_url,
    issue_stream_token,
    issue_upload_token,
    verify_cloudfront_url,
    verify_stream_token,
    verify_upload_token,
)

SECRET = "unit-test-secret-unit-test-secret-0123456789"
TRACK = uuid.uuid4()
USER = uuid.uuid4()


def test_a_stream_token_carries_exactly_sub_sid_and_exp_for_one_hour() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    token, expires_at = issue_stream_token(SECRET, track_id=TRACK, subject=USER, now=now)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": str(USER), "sid": str(TRACK), "exp": int(expires_at.timestamp())}
    assert expires_at - now == timedelta(hours=1)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_a_valid_stream_token_is_accepted_for_its_track() -> None:
    token, _ = issue_stream_token(SECRET, track_id=TRACK, subject=None)
    claims = verify_stream_token(SECRET, token, track_id=TRACK)
    assert claims.track_id == TRACK
    assert claims.subject == "anonymous"


def test_a_missing_stream_token_is_401() -> None:
    with pytest.raises(AuthenticationError, match="required"):
        verify_stream_token(SECRET, None, track_id=TRACK)


def test_an_expired_stream_token_is_401() -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    token, _ = issue_stream_token(SECRET, track_id=TRACK, subject=USER, now=past)
    with pytest.raises(AuthenticationError, match="expired"):
        verify_stream_token(SECRET, token, track_id=TRACK)


def test_a_forged_stream_token_is_401() -> None:
    token, _ = issue_stream_token(
        "another-secret-another-secret-0123456789", track_id=TRACK, subject=USER
    )
    with pytest.raises(AuthenticationError, match="invalid"):
        verify_stream_token(SECRET, token, track_id=TRACK)
    unsigned = jwt.encode(
        {"sub": "x", "sid": str(TRACK), "exp": 9999999999}, key=None, algorithm="none"
    )
    with pytest.raises(AuthenticationError):
        verify_stream_token(SECRET, unsigned, track_id=TRACK)


def test_a_token_for_another_track_is_403() -> None:
    token, _ = issue_stream_token(SECRET, track_id=uuid.uuid4(), subject=USER)
    with pytest.raises(PermissionDeniedError, match="another track"):
        verify_stream_token(SECRET, token, track_id=TRACK)


def test_an_access_token_is_not_a_stream_token() -> None:
    access = jwt.encode(
        {"sub": str(USER), "sid": str(TRACK), "exp": 9999999999, "aud": "lufy-api"},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(AuthenticationError):
        verify_stream_token(SECRET, access, track_id=TRACK)


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
    stream, _ = issue_stream_token(SECRET, track_id=TRACK, subject=USER)
    with pytest.raises(AuthenticationError):
        verify_upload_token(SECRET, stream, upload_id=upload)


def _key_pair() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def test_a_cloudfront_url_verifies_with_the_public_key_and_covers_the_whole_track() -> None:
    private, public = _key_pair()
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    url = cloudfront_signed_url(
        domain="d111111abcdef8.cloudfront.net",
        key_pair_id="K2JCJMDEHXQW5F",
        private_key_pem=private.replace("\n", "\\n"),  # as it often arrives from the env
        track_id=TRACK,
        expires_at=expires_at,
    )
    parts = urlsplit(url)
    assert parts.netloc == "d111111abcdef8.cloudfront.net"
    assert parts.path == f"/hls/{TRACK}/master.m3u8"
    query = parse_qs(parts.query)
    assert query["Key-Pair-Id"] == ["K2JCJMDEHXQW5F"]
    policy = verify_cloudfront_url(url, public)
    statement = policy["Statement"][0]
    assert statement["Resource"] == f"https://d111111abcdef8.cloudfront.net/hls/{TRACK}/*"
    assert statement["Condition"]["DateLessThan"]["AWS:EpochTime"] == int(expires_at.timestamp())
    # The same signature is good for a segment of the track...
    segment = url.replace("master.m3u8", "128k/seg_00001.ts")
    verify_cloudfront_url(segment, public)
    # ...but not for another track, nor after expiry, nor under another key.
    with pytest.raises(ValueError, match="outside"):
        verify_cloudfront_url(url.replace(str(TRACK), str(uuid.uuid4())), public)
    with pytest.raises(ValueError, match="expired"):
        verify_cloudfront_url(url, public, now=expires_at + timedelta(seconds=1))
    _, other_public = _key_pair()
    with pytest.raises(ValueError, match="signature"):
        verify_cloudfront_url(url, other_public)
