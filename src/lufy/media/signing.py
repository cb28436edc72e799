"""Tokens for media: stream tokens and upload tokens.

A stream token is a JWT HS256 {sub, sid (track id), jti (the grant id), tier, exp} whose
header names its key (`kid`, a fingerprint of the secret): the edge (the CloudFront Function,
or the local edge in `lufy.media.edge`) looks the HMAC secret up by that name, so a key
rotation is a second name accepted for a while.
It carries no `aud` on purpose, and a token with an `aud` (an access token) is refused at the
edge: the two can never stand in for each other. Upload tokens authorise one local upload
(`/media/uploads/{id}`) the way an S3 presigned URL would: the key, size and content type are
bound into the signature.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from lufy.errors import AuthenticationError, PermissionDeniedError

__all__ = [
    "STREAM_TOKEN_TTL",
    "TIERS",
    "Tier",
    "UploadClaims",
    "issue_stream_token",
    "issue_upload_token",
    "stream_key_id",
    "stream_token_expiry",
    "verify_upload_token",
]

STREAM_TOKEN_TTL = timedelta(hours=1)
_ALGORITHM = "HS256"
_UPLOAD_AUDIENCE = "lufy-upload"
ANONYMOUS = "anonymous"
Tier = Literal["free", "premium"]
TIERS: tuple[Tier, ...] = ("free", "premium")


@dataclass(frozen=True)
class UploadClaims:
    artist_id: uuid.UUID
    upload_id: uuid.UUID
    key: str
    content_type: str
    size_bytes: int
    expires_at: datetime


def stream_key_id(secret: str) -> str:
    """The name of `secret` as a stream-token key (the JWT `kid`, the KeyValueStore key): a
    fingerprint, so that the name can never drift from the secret it names."""
    return hashlib.sha256(f"lufy-stream-key:{secret}".encode()).hexdigest()[:16]


def stream_token_expiry(now: datetime, ttl: timedelta = STREAM_TOKEN_TTL) -> datetime:
    """When a stream token issued at `now` expires (whole seconds, as the claim carries it)."""
    return now.replace(microsecond=0) + ttl


def issue_stream_token(
    secret: str,
    *,
    track_id: uuid.UUID,
    subject: uuid.UUID | None,
    grant_id: uuid.UUID,
    tier: Tier,
    now: datetime | None = None,
    ttl: timedelta = STREAM_TOKEN_TTL,
) -> tuple[str, datetime]:
    """A stream token for `track_id`; `subject` None means an anonymous listener."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}")
    expires_at = stream_token_expiry(now or datetime.now(UTC), ttl)
    # The payload `json.dumps(claims, separators=(",", ":"))` writes, without the encoder: every
    # value is a UUID, "anonymous", a tier or an integer, none of which JSON escapes.
    payload = (
        f'{{"sub":"{subject or ANONYMOUS}","sid":"{track_id}","jti":"{grant_id}",'
        f'"tier":"{tier}","exp":{int(expires_at.timestamp())}}}'
    )
    return _sign_hs256(secret, payload), expires_at


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@functools.lru_cache(maxsize=8)
def _stream_header(secret: str) -> str:
    # The header `jwt.encode` writes for these arguments (sorted keys, compact).
    header = {"alg": _ALGORITHM, "kid": stream_key_id(secret), "typ": "JWT"}
    return _b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


def _sign_hs256(secret: str, payload: str) -> str:
    """The JWT `jwt.encode(claims, secret, "HS256", headers={"kid": …})` gives for the claims
    `payload` encodes, byte for byte (tests/unit/test_media_signing.py), without PyJWT's
    per-call key checks: this signs the first request of every play."""
    signing_input = f"{_stream_header(secret)}.{_b64url(payload.encode())}"
    digest = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(digest)}"


def issue_upload_token(
    secret: str,
    *,
    artist_id: uuid.UUID,
    upload_id: uuid.UUID,
    key: str,
    content_type: str,
    size_bytes: int,
    expires_at: datetime,
) -> str:
    claims = {
        "aud": _UPLOAD_AUDIENCE,
        "sub": str(artist_id),
        "uid": str(upload_id),
        "key": key,
        "ct": content_type,
        "len": size_bytes,
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_upload_token(secret: str, token: str | None, *, upload_id: uuid.UUID) -> UploadClaims:
    if not token:
        raise AuthenticationError("an upload token is required (query parameter 'token')")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_UPLOAD_AUDIENCE,
            options={"require": ["exp", "sub", "uid", "key", "ct", "len"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("the upload URL has expired; request a new upload") from None
    except jwt.PyJWTError:
        raise AuthenticationError("the upload token is invalid") from None
    if claims["uid"] != str(upload_id):
        raise PermissionDeniedError("the upload token is for another upload")
    return UploadClaims(
        artist_id=uuid.UUID(claims["sub"]),
        upload_id=upload_id,
        key=str(claims["key"]),
        content_type=str(claims["ct"]),
        size_bytes=int(claims["len"]),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )
