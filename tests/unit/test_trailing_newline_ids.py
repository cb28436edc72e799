"""Identifiers checked with a regular expression must match whole: `$` would let a trailing
newline through (into storage paths, log lines and response headers)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lufy.media.storage import InvalidKeyError, check_key
from lufy.web.context import correlation_id, request_context_middleware


@pytest.mark.parametrize(
    "key",
    ["hls/abc/master.m3u8\n", "hls/abc\n/master.m3u8", "uploads/x/source.mp3\n"],
)
def test_a_media_key_with_a_trailing_newline_is_refused(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        check_key(key)


def test_a_plain_media_key_is_still_accepted() -> None:
    assert check_key("hls/abc/128k/seg_00001.ts") == "hls/abc/128k/seg_00001.ts"


def _correlation_for(header: bytes) -> tuple[str | None, list[tuple[bytes, bytes]]]:
    seen: dict[str, str | None] = {}
    sent: list[tuple[bytes, bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["cid"] = correlation_id()
        await send({"type": "http.response.start", "status": 204, "headers": []})

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            sent.extend(message["headers"])

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "headers": [(b"x-correlation-id", header)]}
    asyncio.run(request_context_middleware(app)(scope, receive, send))  # type: ignore[arg-type]
    return seen["cid"], sent


def test_a_correlation_id_with_a_trailing_newline_is_not_echoed_or_logged() -> None:
    cid, headers = _correlation_for(b"abc-123\n")
    assert cid is not None
    assert cid != "abc-123\n"
    assert "\n" not in cid
    assert all(b"\n" not in value for _, value in headers)


def test_a_plain_correlation_id_is_carried() -> None:
    cid, headers = _correlation_for(b"abc-123")
    assert cid == "abc-123"
    assert (b"x-correlation-id", b"abc-123") in headers
