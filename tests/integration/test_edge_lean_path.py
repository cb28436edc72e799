"""The local edge's lean path (`lufy.media.edge_asgi`) answers exactly as the ordinary route.

A request with an `Origin` header still goes through the whole stack (for the CORS headers), so
sending the same request with and without one compares the two paths answer by answer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from lufy.bootstrap import bootstrap
from lufy.media.edge_asgi import TEMPLATE
from lufy.media.signing import issue_stream_token
from lufy.observability import REQUESTS
from lufy.settings import Settings
from lufy.web.app import create_app

ORIGIN = "https://player.example.com"


@pytest.fixture
def cors_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"CORS_ALLOWED_ORIGINS": ORIGIN})


@pytest.fixture
async def client(cors_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(bootstrap(cors_settings))) as c:
        yield c


@pytest.fixture
def track(cors_settings: Settings) -> uuid.UUID:
    track_id = uuid.uuid4()
    folder = Path(cors_settings.MEDIA_ROOT) / "hls" / str(track_id)
    (folder / "64k").mkdir(parents=True)
    (folder / "master.m3u8").write_text("#EXTM3U\n64k/index.m3u8\n256k/index.m3u8\n")
    (folder / "master-free.m3u8").write_text("#EXTM3U\n64k/index.m3u8\n")
    (folder / "64k" / "index.m3u8").write_text("#EXTM3U\nseg_00000.ts\n")
    (folder / "64k" / "seg_00000.ts").write_bytes(bytes(range(256)) * 40)
    (folder / "key.bin").write_bytes(b"k" * 16)
    return track_id


def token_for(settings: Settings, track_id: uuid.UUID, tier: Any = "premium") -> str:
    token, _ = issue_stream_token(
        settings.jwt_secret,
        track_id=track_id,
        subject=None,
        grant_id=uuid.uuid4(),
        tier=tier,
        now=datetime.now(UTC),
    )
    return token


def counted(status: str) -> float:
    value = REQUESTS.labels("GET", TEMPLATE, status)._value.get()
    return float(value)


async def test_the_lean_path_and_the_full_stack_give_the_same_answers(
    client: AsyncTestClient[Any], cors_settings: Settings, track: uuid.UUID
) -> None:
    token = token_for(cors_settings, track)
    free = token_for(cors_settings, track, "free")
    expired, _ = issue_stream_token(
        cors_settings.jwt_secret,
        track_id=track,
        subject=None,
        grant_id=uuid.uuid4(),
        tier="premium",
        now=datetime.now(UTC) - timedelta(hours=2),
    )
    paths = [
        f"/media/hls/{token}/{track}/master.m3u8",
        f"/media/hls/{free}/{track}/master.m3u8",
        f"/media/hls/{token}/{track}/64k/index.m3u8",
        f"/media/hls/{token}/{track}/64k/seg_00000.ts",
        f"/media/hls/{token}/{track}/key.bin",
        f"/media/hls/{token}/{track}/128k/index.m3u8",  # not in the package
        f"/media/hls/{free}/{track}/256k/index.m3u8",
        f"/media/hls/{expired}/{track}/master.m3u8",
        f"/media/hls/{token[:-2]}xx/{track}/key.bin",
        f"/media/hls/{token}/{uuid.uuid4()}/master.m3u8",
        f"/media/hls/{token}/{track}/..%2F..%2Fuploads%2Fx.ts",
        f"/media/hls/{track}/master.m3u8?token={token}",
    ]
    statuses = []
    for path in paths:
        lean = await client.get(path)
        full = await client.get(path, headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in lean.headers, path
        assert full.headers["access-control-allow-origin"] == ORIGIN, path
        assert lean.status_code == full.status_code, path
        assert lean.content == full.content, path
        for header in ("content-type", "cache-control"):
            assert lean.headers.get(header) == full.headers.get(header), (path, header)
        statuses.append(lean.status_code)
    assert statuses == [200, 200, 200, 200, 200, 404, 403, 403, 403, 403, 403, 403]


async def test_a_refusal_is_a_problem_document_naming_the_reason(
    client: AsyncTestClient[Any], cors_settings: Settings, track: uuid.UUID
) -> None:
    free = token_for(cors_settings, track, "free")
    refused = await client.get(f"/media/hls/{free}/{track}/256k/index.m3u8")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json() == {
        "type": "about:blank",
        "status": 403,
        "title": "Forbidden",
        "detail": "the free tier does not include the 256 kbit/s rendition",
    }
    missing = await client.get(f"/media/hls/{free}/{track}/64k/seg_00001.ts")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no such media file"


async def test_an_edge_answer_carries_request_ids_and_the_callers_correlation_id(
    client: AsyncTestClient[Any], cors_settings: Settings, track: uuid.UUID
) -> None:
    path = f"/media/hls/{token_for(cors_settings, track)}/{track}/key.bin"
    first = await client.get(path, headers={"X-Correlation-Id": "player-42"})
    second = await client.get(path)
    assert first.headers["x-correlation-id"] == "player-42"
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    # Without a caller's id, the correlation id is the request id (as in the middleware).
    assert second.headers["x-correlation-id"] == second.headers["x-request-id"]
    unsafe = await client.get(path, headers={"X-Correlation-Id": "bad id\twith tab"})
    assert unsafe.headers["x-correlation-id"] == unsafe.headers["x-request-id"]


async def test_edge_requests_are_counted_under_the_routes_template(
    client: AsyncTestClient[Any], cors_settings: Settings, track: uuid.UUID
) -> None:
    token = token_for(cors_settings, track)
    ok, refused = counted("200"), counted("403")
    await client.get(f"/media/hls/{token}/{track}/master.m3u8")
    await client.get(f"/media/hls/{token}/{track}/key.bin")
    await client.get(f"/media/hls/{token}x/{track}/key.bin")
    # The full stack counts the ordinary route under the same template: one series for both.
    await client.get(f"/media/hls/{token}/{track}/key.bin", headers={"Origin": ORIGIN})
    assert counted("200") == ok + 3
    assert counted("403") == refused + 1
