"""Where a stream URL points, and which keys the local edge accepts.

The token travels in the path (`…/hls/{token}/{track_id}/master.m3u8`): every playlist, key and
segment URI of the package is relative, so a player's requests carry the token with no
rewriting, through CloudFront and through the local edge alike.
"""

from __future__ import annotations

import uuid

from lufy.media.edge import stream_path
from lufy.media.signing import stream_key_id
from lufy.settings import Settings

__all__ = ["delivery_mode", "stream_keys", "stream_url"]


def delivery_mode(settings: Settings) -> str:
    """`cloudfront` when a distribution is configured, else `local` (`lufy serve`)."""
    return "cloudfront" if settings.CLOUDFRONT_DOMAIN else "local"


def stream_url(settings: Settings, token: str, track_id: uuid.UUID) -> str:
    if settings.CLOUDFRONT_DOMAIN:
        domain = settings.CLOUDFRONT_DOMAIN.removeprefix("https://").removeprefix("http://")
        return f"https://{domain.rstrip('/')}{stream_path(token, track_id)}"
    return f"{settings.APP_URL}/media{stream_path(token, track_id)}"


def stream_keys(settings: Settings) -> dict[str, str]:
    """kid -> HMAC secret: the current key and, during a rotation, the previous ones (what the
    KeyValueStore holds for the CloudFront Function)."""
    secrets = [p.strip() for p in settings.STREAM_PREVIOUS_SECRETS.split(",") if p.strip()]
    secrets.append(settings.jwt_secret)
    return {stream_key_id(secret): secret for secret in secrets}
