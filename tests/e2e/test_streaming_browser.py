"""A real player: hls.js in Debian's Chromium plays a transcoded track through the local edge
of the running app. Every variant playlist, the AES key and segments of every rendition load,
and currentTime advances; an expired or a foreign token fails with 403 on the first request."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lufy.bootstrap import Container, bootstrap
from lufy.catalog.processing import process_track
from lufy.catalog.schemas import UploadCreate
from lufy.media.signing import issue_stream_token
from lufy.settings import Settings
from lufy.web.auth import Principal
from tests.helpers.accounts import create_user
from tests.helpers.edge import npm_ci, serve_app
from tests.helpers.media import make_tone

CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class Played:
    responses: list[dict[str, Any]]
    levels: int
    switched: list[int]
    current_time: float
    error: dict[str, Any] | None


def play(origin: str, url: str, mode: str = "play") -> Played:
    with tempfile.TemporaryDirectory(prefix="lufy-chromium-") as home:
        return _play(origin, url, mode, Path(home))


def _play(origin: str, url: str, mode: str, home: Path) -> Played:
    assert Path(CHROMIUM).exists(), "Debian's chromium is required (scripts/services.sh)"
    node = shutil.which("node")
    assert node is not None
    folder = npm_ci()
    result = subprocess.run(
        [node, str(folder / "play.mjs"), origin, url, mode],
        capture_output=True,
        timeout=180,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CHROMIUM": CHROMIUM, "HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    out = json.loads(result.stdout)
    return Played(
        responses=out["responses"],
        levels=out["levels"],
        switched=out["switched"],
        current_time=out["currentTime"],
        error=out["error"],
    )


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    with serve_app(settings) as base:
        yield base


@pytest.fixture
async def ready_track(server: str, settings: Settings, tmp_path: Path) -> AsyncIterator[str]:
    """A published, transcoded (AES-128) 20-second tone in the server's media root."""
    container: Container = bootstrap(settings.model_copy(update={"APP_URL": server}))
    await container.start()
    try:
        service = container.catalog
        user = await create_user(container, role="artist")
        artist = Principal(user_id=user.id, role="artist", session_id=user.session_id)
        data = make_tone(tmp_path / "tone.mp3", seconds=20).read_bytes()
        ticket = await service.request_upload(
            artist,
            UploadCreate(
                filename="tone.mp3", content_type="audio/mpeg", size_bytes=len(data), title="A"
            ),
        )
        service.storage.put_bytes(
            f"uploads/{ticket.track_id}/source.mp3", data, content_type="audio/mpeg"
        )
        await service.complete_upload(artist, ticket.upload_id)
        assert await process_track(service, ticket.track_id, "browser") == "ready"
        await service.publish(artist, ticket.track_id)
        yield str(ticket.track_id)
    finally:
        await container.stop()


async def test_hls_js_in_chromium_plays_every_rendition_with_its_key_through_the_local_edge(
    server: str, ready_track: str
) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        grant = (await http.get(f"/api/music/tracks/{ready_track}/stream")).json()
    played = play(server, grant["url"])
    assert played.error is None, played
    assert played.levels == 3
    assert played.switched == [0, 1, 2]
    assert played.current_time > 1.0
    prefix = f"{server}/media/hls/{grant['token']}/{ready_track}/"
    fetched = {r["url"].removeprefix(prefix): r["status"] for r in played.responses}
    assert all(url.startswith(prefix) for url in (r["url"] for r in played.responses))
    assert set(fetched.values()) == {200}
    for name in ("master.m3u8", "64k/index.m3u8", "128k/index.m3u8", "256k/index.m3u8"):
        assert name in fetched, (name, sorted(fetched))
    assert "key.bin" in fetched
    for rendition in ("64k", "128k", "256k"):
        assert any(k.startswith(f"{rendition}/seg_") for k in fetched), (rendition, fetched)


async def test_an_expired_token_fails_with_403_on_the_first_request(
    server: str, ready_track: str, settings: Settings
) -> None:
    token, _ = issue_stream_token(
        settings.jwt_secret,
        track_id=uuid.UUID(ready_track),
        subject=None,
        grant_id=uuid.uuid4(),
        tier="premium",
        now=datetime.now(UTC) - timedelta(hours=2),
    )
    url = f"{server}/media/hls/{token}/{ready_track}/master.m3u8"
    played = play(server, url, mode="refuse")
    assert played.error is not None
    assert played.error["code"] == 403
    assert played.responses == [{"url": url, "status": 403}]


async def test_a_token_for_another_track_fails_with_403_on_the_first_request(
    server: str, ready_track: str, settings: Settings
) -> None:
    foreign, _ = issue_stream_token(
        settings.jwt_secret,
        track_id=uuid.uuid4(),
        subject=None,
        grant_id=uuid.uuid4(),
        tier="premium",
    )
    url = f"{server}/media/hls/{foreign}/{ready_track}/master.m3u8"
    played = play(server, url, mode="refuse")
    assert played.error is not None
    assert played.error["code"] == 403
    assert played.responses == [{"url": url, "status": 403}]
