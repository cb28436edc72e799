"""The table of stream-edge cases that the CloudFront Function and the local edge must decide
alike (`tests/integration/test_stream_edge_cases.py`, `tests/unit/test_media_edge.py`)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from lufy.media.signing import issue_stream_token, stream_key_id
from tests.helpers.edge import make_token

__all__ = ["KVS", "NEW_SECRET", "OLD_SECRET", "Case", "cases"]

OLD_SECRET = "the-previous-stream-key-0123456789abcdef"
NEW_SECRET = "the-current-stream-key-0123456789abcdefgh"
OLD, NEW = stream_key_id(OLD_SECRET), stream_key_id(NEW_SECRET)
# What the KeyValueStore holds during a rotation: both secrets, each under its fingerprint.
KVS = {OLD: OLD_SECRET, NEW: NEW_SECRET}


@dataclass(frozen=True)
class Case:
    name: str
    uri: str  # the path CloudFront sees
    allow: str | None = None  # the origin object's file, relative to hls/{track}/
    refuse: str | None = None  # the 403's detail
    query: str = ""  # a query string sent along


def _claims(track: uuid.UUID, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "anonymous",
        "sid": str(track),
        "jti": str(uuid.uuid4()),
        "tier": "premium",
        "exp": int(time.time()) + 3600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def cases(track: uuid.UUID) -> list[Case]:
    t = str(track)
    hs = {"alg": "HS256", "typ": "JWT", "kid": NEW}
    m = "master.m3u8"
    good = make_token(hs, _claims(track), NEW_SECRET)
    free = make_token(hs, _claims(track, tier="free"), NEW_SECRET)
    issued, _ = issue_stream_token(
        NEW_SECRET,
        track_id=track,
        subject=uuid.uuid4(),
        grant_id=uuid.uuid4(),
        tier="premium",
    )
    other_track = make_token(hs, _claims(uuid.uuid4()), NEW_SECRET)
    head, _, sig = good.split(".")
    tampered_body = make_token(hs, _claims(uuid.uuid4()), NEW_SECRET).split(".")[1]
    return [
        Case("a valid token opens the master playlist", f"/hls/{good}/{t}/master.m3u8",
             allow="master.m3u8"),
        Case("a valid token opens a variant playlist", f"/hls/{good}/{t}/256k/index.m3u8",
             allow="256k/index.m3u8"),
        Case("a valid token opens a segment", f"/hls/{good}/{t}/64k/seg_00001.ts",
             allow="64k/seg_00001.ts"),
        Case("a valid token opens the AES key", f"/hls/{good}/{t}/key.bin", allow="key.bin"),
        Case("a token the API issued plays", f"/hls/{issued}/{t}/128k/index.m3u8",
             allow="128k/index.m3u8"),
        Case("a query string after a valid path is ignored", f"/hls/{good}/{t}/master.m3u8",
             query="token=junk&x=1", allow="master.m3u8"),
        Case("the previous key still opens during a rotation",
             f"/hls/{make_token({**hs, 'kid': OLD}, _claims(track), OLD_SECRET)}/{t}/master.m3u8",
             allow="master.m3u8"),
        Case("a key the store does not hold is refused",
             f"/hls/{make_token({**hs, 'kid': 'k9'}, _claims(track), NEW_SECRET)}/{t}/master.m3u8",
             refuse="the stream token's key is not known"),
        Case("a token without a kid is refused",
             f"/hls/{make_token({'alg': 'HS256'}, _claims(track), NEW_SECRET)}/{t}/master.m3u8",
             refuse="the stream token names no key (kid)"),
        Case("the old key under the new key's name is refused",
             f"/hls/{make_token(hs, _claims(track), OLD_SECRET)}/{t}/master.m3u8",
             refuse="the stream token's signature does not verify"),
        Case("an expired token is refused",
             f"/hls/{make_token(hs, _claims(track, exp=int(time.time()) - 5), NEW_SECRET)}/{t}/{m}",
             refuse="the stream token has expired"),
        Case("a token for another track is refused", f"/hls/{other_track}/{t}/master.m3u8",
             refuse="the stream token is for another track"),
        Case("a wrong signature is refused",
             f"/hls/{make_token(hs, _claims(track), 'not-the-key')}/{t}/master.m3u8",
             refuse="the stream token's signature does not verify"),
        Case("a payload swapped under a valid signature is refused",
             f"/hls/{head}.{tampered_body}.{sig}/{t}/master.m3u8",
             refuse="the stream token's signature does not verify"),
        Case("alg none is refused",
             f"/hls/{make_token({'alg': 'none', 'kid': NEW}, _claims(track), None)}/{t}/{m}",
             refuse="the stream token must be signed with HS256"),
        Case("another algorithm is refused",
             f"/hls/{make_token({**hs, 'alg': 'HS512'}, _claims(track), NEW_SECRET)}/{t}/{m}",
             refuse="the stream token must be signed with HS256"),
        Case("an access token (with aud) is refused",
             f"/hls/{make_token(hs, _claims(track, aud='lufy-api'), NEW_SECRET)}/{t}/master.m3u8",
             refuse="the token is not a stream token"),
        Case("a token without a tier is refused",
             f"/hls/{make_token(hs, _claims(track, tier=None), NEW_SECRET)}/{t}/master.m3u8",
             refuse="the stream token has no valid tier"),
        Case("a token whose exp is a string is refused",
             f"/hls/{make_token(hs, _claims(track, exp='9999999999'), NEW_SECRET)}/{t}/master.m3u8",
             refuse="the stream token has no expiry"),
        Case("a garbled token is refused", f"/hls/not.a.token/{t}/master.m3u8",
             refuse="the stream token is malformed"),
        Case("a token in the query string instead of the path is refused",
             f"/hls/{t}/master.m3u8", query=f"token={good}",
             refuse="the stream URL must look like /hls/{token}/{track_id}/{file}"),
        Case("the free tier gets the master playlist without 256k",
             f"/hls/{free}/{t}/master.m3u8", allow="master-free.m3u8"),
        Case("the free tier plays 128k", f"/hls/{free}/{t}/128k/seg_00000.ts",
             allow="128k/seg_00000.ts"),
        Case("the free tier is refused the 256k playlist", f"/hls/{free}/{t}/256k/index.m3u8",
             refuse="the free tier does not include the 256 kbit/s rendition"),
        Case("the free tier is refused 256k segments", f"/hls/{free}/{t}/256k/seg_00000.ts",
             refuse="the free tier does not include the 256 kbit/s rendition"),
        Case("dot-dot segments are refused", f"/hls/{good}/{t}/../../{t}/key.bin",
             refuse="no such media file"),
        Case("dot-dot inside a rendition is refused", f"/hls/{good}/{t}/128k/../key.bin",
             refuse="no such media file"),
        Case("percent-encoded dot-dot is refused", f"/hls/{good}/{t}/%2e%2e%2fkey.bin",
             refuse="no such media file"),
        Case("a traversal in place of the track id is refused",
             f"/hls/{good}/%2e%2e/{t}/master.m3u8", refuse="the stream URL names no track id"),
        Case("a file two folders deep is refused", f"/hls/{good}/{t}/128k/x/seg_00000.ts",
             refuse="no such media file"),
        Case("an empty path segment is refused", f"/hls/{good}/{t}//master.m3u8",
             refuse="no such media file"),
        Case("a file that is not a playlist, segment or key is refused",
             f"/hls/{good}/{t}/source.wav", refuse="no such media file"),
        Case("a hidden file is refused", f"/hls/{good}/{t}/.keyinfo", refuse="no such media file"),
    ]  # fmt: skip
