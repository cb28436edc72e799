"""End to end: an artist signs up over HTTP and uploads a generated 20-second tone to a running
server, the job makes it ready, it is published, and ffprobe plays the HLS stream over HTTP
through the token URL (the token in the path, the playlists static); without a token, or with
a wrong one, it gets 403."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from lufy.bootstrap import Container, bootstrap
from lufy.catalog.processing import process_track
from lufy.media.signing import issue_stream_token
from lufy.media.transcode import ffprobe_binary
from lufy.settings import Settings
from tests.helpers.accounts import DEFAULT_PASSWORD
from tests.helpers.edge import serve_app
from tests.helpers.media import make_tone


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """The real app as `lufy serve` runs it, in a subprocess on a free loopback port."""
    with serve_app(settings) as base:
        yield base


def ffprobe_url(url: str) -> subprocess.CompletedProcess[bytes]:
    binary = ffprobe_binary()
    assert binary is not None, "ffprobe is required for this test"
    return subprocess.run(
        [
            binary,
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            "-allowed_extensions",
            "ALL",
            url,
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
async def server_container(server: str, settings: Settings) -> AsyncIterator[Container]:
    """A container configured like the server (its APP_URL is the issuer of access tokens)."""
    container = bootstrap(settings.model_copy(update={"APP_URL": server}))
    await container.start()
    yield container
    await container.stop()


async def test_an_uploaded_tone_is_streamed_over_http_through_the_token_url(
    server: str, server_container: Container, tmp_path: Path, settings: Settings
) -> None:
    container = server_container
    tone = make_tone(tmp_path / "tone.mp3", seconds=20)
    data = tone.read_bytes()

    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        # An artist signs up and signs in, over HTTP.
        email = f"artist-{uuid.uuid4().hex[:8]}@example.com"
        signed_up = await http.post(
            "/api/auth/sign-up",
            json={
                "email": email,
                "password": DEFAULT_PASSWORD,
                "display_name": "Tone Artist",
                "role": "artist",
            },
        )
        assert signed_up.status_code == 201, signed_up.text
        signed_in = await http.post(
            "/api/auth/sign-in", json={"email": email, "password": DEFAULT_PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        artist_headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        created = await http.post(
            "/api/music/uploads",
            json={
                "filename": "tone.mp3",
                "content_type": "audio/mpeg",
                "size_bytes": len(data),
                "title": "Twenty seconds of A",
            },
            headers=artist_headers,
        )
        assert created.status_code == 201, created.text
        ticket = created.json()
        assert ticket["url"].startswith(f"{server}/media/uploads/")
        sent = await http.put(ticket["url"], content=data, headers=ticket["headers"])
        assert sent.status_code == 200, sent.text
        done = await http.post(
            f"/api/music/uploads/{ticket['upload_id']}/complete", headers=artist_headers
        )
        assert done.status_code == 202, done.text
        track_id = ticket["track_id"]

        # The job (what the media-processing worker runs for catalog.track_uploaded).
        status = await process_track(container.catalog, uuid.UUID(track_id), "e2e-job")
        assert status == "ready"
        track = (await http.get(f"/api/music/tracks/{track_id}", headers=artist_headers)).json()
        assert track["status"] == "ready"
        assert abs(track["duration_ms"] - 20_000) < 300

        published = await http.post(f"/api/music/tracks/{track_id}/publish", headers=artist_headers)
        assert published.status_code == 200, published.text
        grant = (await http.get(f"/api/music/tracks/{track_id}/stream")).json()
        token = grant["token"]
        assert grant["url"] == f"{server}/media/hls/{token}/{track_id}/master.m3u8"

        # The old shape (token in the query), a forged token, another track's: refused.
        query = f"{server}/media/hls/{track_id}/master.m3u8?token={token}"
        assert (await http.get(query)).status_code == 403
        forged = grant["url"].replace(token, token[:-2] + "xx")
        assert (await http.get(forged)).status_code == 403
        other, _ = issue_stream_token(
            settings.jwt_secret,
            track_id=uuid.uuid4(),
            subject=None,
            grant_id=uuid.uuid4(),
            tier="premium",
        )
        assert (await http.get(grant["url"].replace(token, other))).status_code == 403

    probe = ffprobe_url(grant["url"])
    assert probe.returncode == 0, probe.stderr.decode()
    info = json.loads(probe.stdout)
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert audio, info
    assert {s["codec_name"] for s in audio} == {"aac"}
    assert abs(float(info["format"]["duration"]) - 20.0) < 0.5

    refused = ffprobe_url(query)
    assert refused.returncode != 0
    assert b"403" in refused.stderr or b"Forbidden" in refused.stderr
