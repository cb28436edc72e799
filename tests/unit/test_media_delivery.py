"""Where stream URLs point and which keys the local edge accepts."""

from __future__ import annotations

import uuid

from lufy.media.delivery import delivery_mode, stream_keys, stream_url
from lufy.media.signing import stream_key_id
from lufy.settings import load_settings

TRACK = uuid.UUID("6f1c2a0e-8d43-4c1b-9a57-0d2f3e4b5c6d")
SECRET = "the-current-secret-0123456789abcdef0123"


def test_the_local_stream_url_carries_the_token_in_its_path() -> None:
    settings = load_settings(APP_URL="http://127.0.0.1:8000", JWT_SECRET=SECRET)
    assert delivery_mode(settings) == "local"
    assert stream_url(settings, "a.b.c", TRACK) == (
        f"http://127.0.0.1:8000/media/hls/a.b.c/{TRACK}/master.m3u8"
    )


def test_the_cloudfront_stream_url_carries_the_token_in_its_path() -> None:
    settings = load_settings(JWT_SECRET=SECRET, CLOUDFRONT_DOMAIN="d111111abcdef8.cloudfront.net")
    assert delivery_mode(settings) == "cloudfront"
    assert stream_url(settings, "a.b.c", TRACK) == (
        f"https://d111111abcdef8.cloudfront.net/hls/a.b.c/{TRACK}/master.m3u8"
    )


def test_the_local_edge_accepts_the_current_and_the_previous_secrets_by_fingerprint() -> None:
    alone = load_settings(JWT_SECRET=SECRET)
    assert stream_keys(alone) == {stream_key_id(SECRET): SECRET}
    rotating = load_settings(JWT_SECRET=SECRET, STREAM_PREVIOUS_SECRETS="old-one, old-two")
    assert stream_keys(rotating) == {
        stream_key_id("old-one"): "old-one",
        stream_key_id("old-two"): "old-two",
        stream_key_id(SECRET): SECRET,
    }
