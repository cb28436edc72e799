"""Tokens and signed URLs for media: stream tokens, upload tokens, CloudFront URLs.

A stream token is a JWT HS256 {sub, sid (track id), exp} (CONTRACT.md §3). It carries no `aud`
on purpose, and an access token (which has `aud`) is refused here: the two can never stand in
for each other. Upload tokens authorise one local upload (`/media/uploads/{id}`) the way an S3
presigned URL would: the key, size and content type are bound into the signature.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lufy.errors import AuthenticationError, PermissionDeniedError

__all__ = [
    "STREAM_TOKEN_TTL",
    "StreamClaims",
    "UploadClaims",
    "cloudfront_signed_url",
    "issue_stream_token",
    "issue_upload_token",
    "verify_cloudfront_url",
    "verify_stream_token",
    "verify_upload_token",
]

STREAM_TOKEN_TTL = timedelta(hours=1)
_ALGORITHM = "HS256"
_UPLOAD_AUDIENCE = "lufy-upload"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class StreamClaims:
    subject: str
    track_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True)
class UploadClaims:
    artist_id: uuid.UUID
    upload_id: uuid.UUID
    key: str
    content_type: str
    size_bytes: int
    expires_at: datetime


def issue_stream_token(
    secret: str,
    *,
    track_id: uuid.UUID,
    subject: uuid.UUID | None,
    now: datetime | None = None,
    ttl: timedelta = STREAM_TOKEN_TTL,
) -> tuple[str, datetime]:
    """A stream token for `track_id`; `subject` None means an anonymous listener."""
    expires_at = (now or datetime.now(UTC)).replace(microsecond=0) + ttl
    claims = {
        "sub": str(subject) if subject else ANONYMOUS,
        "sid": str(track_id),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), expires_at


def verify_stream_token(
    secret: str, token: str | None, *, track_id: uuid.UUID, now: datetime | None = None
) -> StreamClaims:
    """Check a stream token as the edge would: 401 when missing, forged or expired,
    403 when valid but for another track."""
    if not token:
        raise AuthenticationError("a stream token is required (query parameter 'token')")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            options={"require": ["exp", "sub", "sid"], "verify_aud": False},
            leeway=0,
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("the stream token has expired") from None
    except jwt.PyJWTError:
        raise AuthenticationError("the stream token is invalid") from None
    if "aud" in claims:
        raise AuthenticationError("the stream token is invalid (not a stream token)")
    if now is not None and claims["exp"] <= int(now.timestamp()):
        raise AuthenticationError("the stream token has expired")
    try:
        sid = uuid.UUID(str(claims["sid"]))
    except ValueError:
        raise AuthenticationError("the stream token is invalid") from None
    if sid != track_id:
        raise PermissionDeniedError("the stream token is for another track")
    return StreamClaims(
        subject=str(claims["sub"]),
        track_id=sid,
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )


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


# --- CloudFront ----------------------------------------------------------------------------


def _load_private_key(pem: str) -> rsa.RSAPrivateKey:
    # Environments often carry the PEM with literal "\n" sequences.
    text = pem.replace("\\n", "\n").strip().encode()
    key = serialization.load_pem_private_key(text, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("CLOUDFRONT_PRIVATE_KEY must be an RSA private key")
    return key


def cloudfront_signed_url(
    *,
    domain: str,
    key_pair_id: str,
    private_key_pem: str,
    track_id: uuid.UUID,
    expires_at: datetime,
    path: str = "master.m3u8",
) -> str:
    """A CloudFront URL for `hls/{track_id}/{path}` signed with a custom policy whose resource
    is `hls/{track_id}/*`: the same signature is valid for every playlist, key and segment of
    the track, and for nothing else."""
    key = _load_private_key(private_key_pem)

    def rsa_signer(message: bytes) -> bytes:
        # CloudFront verifies RSA-SHA1 PKCS#1 v1.5 signatures.
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303

    base = domain if domain.startswith(("http://", "https://")) else f"https://{domain}"
    base = base.rstrip("/")
    signer = CloudFrontSigner(key_pair_id, rsa_signer)
    policy = signer.build_policy(f"{base}/hls/{track_id}/*", date_less_than=expires_at)
    url: str = signer.generate_presigned_url(f"{base}/hls/{track_id}/{path}", policy=policy)
    return url


def _cf_b64decode(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def verify_cloudfront_url(
    url: str, public_key_pem: bytes, *, now: datetime | None = None
) -> dict[str, Any]:
    """Verify a custom-policy signed URL as CloudFront would; return the decoded policy.
    Raises ValueError when the signature, resource or expiry does not hold."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    policy_bytes = _cf_b64decode(query["Policy"][0])
    signature = _cf_b64decode(query["Signature"][0])
    public_key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    try:
        public_key.verify(signature, policy_bytes, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    except Exception as exc:
        raise ValueError("signature does not verify") from exc
    policy: dict[str, Any] = json.loads(policy_bytes)
    statement = policy["Statement"][0]
    resource: str = statement["Resource"]
    target = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if not (target == resource or (resource.endswith("*") and target.startswith(resource[:-1]))):
        raise ValueError("URL is outside the policy's resource")
    epoch = statement["Condition"]["DateLessThan"]["AWS:EpochTime"]
    if int((now or datetime.now(UTC)).timestamp()) >= int(epoch):
        raise ValueError("signed URL has expired")
    return policy
