"""The stream edge: the checks `deploy/cloudfront/stream-auth.js` makes, in Python.

A stream URL carries its token in the path, `/hls/{token}/{track_id}/{file}`, so that the
relative URIs of the playlists (`128k/index.m3u8`, `seg_00000.ts`, `../key.bin`) inherit it
with no rewriting. `authorize` decides one request the way the CloudFront Function does, step
by step and with the same reasons, and names the object to serve (`/hls/{track_id}/{file}`);
the local edge (`/media/hls/…` in `lufy.media.api`) then reads that object from the storage
port. `Edge` is the same decision for a process that sees the same token again and again (the
lean edge, `lufy.media.edge_asgi`): it verifies each token once. A shared table of cases runs
against the function and the local edge, and they must agree case by case
(`tests/integration/test_stream_edge_cases.py`).

Every refusal is a 403: a caller learns why from the problem's `detail`, never whether a
track exists. A token for the free tier is served `master-free.m3u8` (written by the
transcoder, without the premium renditions) when it asks for `master.m3u8`, and is refused
the premium renditions themselves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FREE_MASTER",
    "MASTER",
    "PREMIUM_ONLY",
    "Edge",
    "EdgeDecision",
    "authorize",
    "stream_path",
]

MASTER = "master.m3u8"
FREE_MASTER = "master-free.m3u8"
# Rendition folders a free-tier token may not fetch (the 256 kbit/s rendition).
PREMIUM_ONLY = ("256k",)

_PATH = re.compile(r"/hls/([^/]+)/([^/]+)/(.+)")
_TRACK = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_TOKEN = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_SERVED = (".m3u8", ".ts", ".bin")


@dataclass(frozen=True)
class EdgeDecision:
    """`origin_uri` (`/hls/{track_id}/{file}`) when allowed, else the reason for the 403."""

    origin_uri: str | None = None
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        return self.origin_uri is not None


def stream_path(token: str, track_id: object, file: str = MASTER) -> str:
    """The edge path of `file` of a track's package for `token`."""
    return f"/hls/{token}/{track_id}/{file}"


def _refuse(reason: str) -> EdgeDecision:
    return EdgeDecision(reason=reason)


def _b64url_json(part: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return json.loads(raw.decode(), parse_constant=_no_constant)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _no_constant(name: str) -> Any:
    # JSON.parse knows no NaN/Infinity: neither do we, so both edges decide alike.
    raise ValueError(name)


def _signature(secret: str, signing_input: str) -> str:
    digest = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(uri: str, keys: Mapping[str, str], *, now: float) -> EdgeDecision:
    """Decide one request for `uri` (the path only, as received; the query string plays no
    part) with the HMAC secrets `keys` (kid -> secret) at `now` (seconds since the epoch)."""
    return _decide(uri, now, lambda token: _verify(token, keys))


class Edge:
    """`authorize` with fixed keys and a memory of the tokens it has verified.

    A player sends the same token with every request of a play (master, variant, key, then a
    segment every few seconds): verifying it once is enough. What is remembered, keyed by the
    whole token string (header, payload and signature), is only what passed every check that
    depends on the token alone (shape, `alg`, `kid`, signature, no `aud`, a numeric `exp`);
    everything that depends on the request or the time (`exp` against `now`, `sid` against
    the path, the tier's files) is checked on every request, in the same order, so a decision
    is the same with or without the memory. Refused tokens are not remembered. At most
    `remember` tokens are kept (the oldest go first); the keys are fixed for the life of the
    object, as they are for the life of the process."""

    def __init__(self, keys: Mapping[str, str], *, remember: int = 4096) -> None:
        self._keys = dict(keys)
        self._remember = remember
        self._verified: dict[str, _Verified] = {}

    def authorize(self, uri: str, *, now: float) -> EdgeDecision:
        return _decide(uri, now, self._check)

    def _check(self, token: str) -> _Verified | str:
        verified = self._verified.get(token)
        if verified is not None:
            return verified
        checked = _verify(token, self._keys)
        if isinstance(checked, _Verified) and self._remember > 0:
            if len(self._verified) >= self._remember:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = checked
        return checked


@dataclass(frozen=True, slots=True)
class _Verified:
    """The claims of a token that passed every check of the token alone."""

    exp: float
    sid: object
    tier: object


def _decide(uri: str, now: float, check: Callable[[str], _Verified | str]) -> EdgeDecision:
    path = _PATH.fullmatch(uri)
    if path is None:
        return _refuse("the stream URL must look like /hls/{token}/{track_id}/{file}")
    token, track_id, file = path.groups()
    if _TRACK.fullmatch(track_id) is None:
        return _refuse("the stream URL names no track id")
    names = file.split("/")
    if (
        len(names) > 2
        or any(_NAME.fullmatch(name) is None for name in names)
        or not names[-1].endswith(_SERVED)
    ):
        return _refuse("no such media file")
    verified = check(token)
    if isinstance(verified, str):
        return _refuse(verified)
    if now >= verified.exp:
        return _refuse("the stream token has expired")
    if verified.sid != track_id:
        return _refuse("the stream token is for another track")
    tier = verified.tier
    if tier not in ("free", "premium"):
        return _refuse("the stream token has no valid tier")
    if tier == "free":
        if len(names) == 2 and names[0] in PREMIUM_ONLY:
            return _refuse("the free tier does not include the 256 kbit/s rendition")
        if file == MASTER:
            file = FREE_MASTER
    return EdgeDecision(origin_uri=f"/hls/{track_id}/{file}")


def _verify(token: str, keys: Mapping[str, str]) -> _Verified | str:
    """The claims of `token` if it passes every check of the token alone, else the reason."""
    parts = _TOKEN.fullmatch(token)
    if parts is None:
        return "the stream token is malformed"
    header_part, payload_part, signature = parts.groups()
    header = _b64url_json(header_part)
    if not isinstance(header, dict):
        return "the stream token is malformed"
    if header.get("alg") != "HS256":
        return "the stream token must be signed with HS256"
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        return "the stream token names no key (kid)"
    secret = keys.get(kid)
    if secret is None:
        return "the stream token's key is not known"
    expected = _signature(secret, f"{header_part}.{payload_part}")
    if not hmac.compare_digest(expected, signature):
        return "the stream token's signature does not verify"
    claims = _b64url_json(payload_part)
    if not isinstance(claims, dict):
        return "the stream token is malformed"
    if "aud" in claims:
        return "the token is not a stream token"
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return "the stream token has no expiry"
    return _Verified(exp=exp, sid=claims.get("sid"), tier=claims.get("tier"))
