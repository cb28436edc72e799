"""The S3 path: presigned PUT straight to S3 (moto server over HTTP), then the same pipeline."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from lufy.bootstrap import Container, bootstrap
from lufy.catalog.processing import process_track
from lufy.media.storage import S3Storage
from lufy.settings import Settings
from lufy.web.app import create_app
from tests.helpers.accounts import TestUser, create_user
from tests.helpers.media import MotoS3, make_tone, moto_s3  # noqa: F401


@pytest.fixture
def bucket(moto_s3: MotoS3) -> S3Storage:  # noqa: F811
    return moto_s3.storage()


@pytest.fixture
async def client(settings: Settings, bucket: S3Storage) -> AsyncIterator[AsyncTestClient[Any]]:
    app_container = bootstrap(settings, storage=bucket)
    async with AsyncTestClient(app=create_app(app_container)) as c:
        yield c


@pytest.fixture
async def s3_container(settings: Settings, bucket: S3Storage) -> AsyncIterator[Container]:
    c = bootstrap(settings, storage=bucket)
    await c.start()
    yield c
    await c.stop()


async def _ticket(
    client: AsyncTestClient[Any], artist: TestUser, name: str, ctype: str, size: int
) -> dict[str, Any]:
    response = await client.post(
        "/api/music/uploads",
        json={"filename": name, "content_type": ctype, "size_bytes": size, "title": "S3 tone"},
        headers=artist.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_an_upload_through_a_presigned_put_is_processed_and_delivered(
    s3_container: Container, client: AsyncTestClient[Any], bucket: S3Storage, tmp_path: Path
) -> None:
    artist = await create_user(s3_container, role="artist")
    tone = make_tone(tmp_path / "tone.flac", seconds=5)
    data = tone.read_bytes()
    ticket = await _ticket(client, artist, "tone.flac", "audio/flac", len(data))
    assert ticket["method"] == "PUT"
    assert ticket["url"].startswith(bucket.client.meta.endpoint_url)
    assert "X-Amz-Signature=" in ticket["url"]
    assert ticket["headers"] == {"Content-Type": "audio/flac", "Content-Length": str(len(data))}
    async with httpx.AsyncClient() as http:
        put = await http.put(ticket["url"], content=data, headers=ticket["headers"])
    assert put.status_code == 200, put.text
    done = await client.post(
        f"/api/music/uploads/{ticket['upload_id']}/complete", headers=artist.headers
    )
    assert done.status_code == 202, done.text
    track_id = uuid.UUID(ticket["track_id"])
    assert await process_track(s3_container.catalog, track_id, "s3-job") == "ready"
    keys = bucket.list(f"hls/{track_id}/")
    assert f"hls/{track_id}/master.m3u8" in keys
    assert len([k for k in keys if k.endswith(".ts")]) == 3  # 5 s: one segment per rendition
    token = (
        await client.get(f"/api/music/tracks/{track_id}/stream", headers=artist.headers)
    ).json()["token"]
    # The local edge serves the objects from the bucket, as the transcoder wrote them.
    master = await client.get(f"/media/hls/{token}/{track_id}/master.m3u8")
    assert master.status_code == 200
    assert master.content == bucket.get_bytes(f"hls/{track_id}/master.m3u8")
    assert "\n256k/index.m3u8\n" in master.text
    segment = await client.get(f"/media/hls/{token}/{track_id}/256k/seg_00000.ts")
    assert segment.status_code == 200
    assert segment.content == bucket.get_bytes(f"hls/{track_id}/256k/seg_00000.ts")


@pytest.mark.parametrize(
    ("sent_type", "sent_bytes", "words"),
    [
        ("audio/wav", None, "declared"),
        ("audio/mpeg", b"a" * 10, "bytes"),
        ("audio/mpeg", b"", "bytes"),
    ],
)
async def test_a_file_that_differs_from_the_declaration_is_refused_at_completion(
    s3_container: Container,
    client: AsyncTestClient[Any],
    bucket: S3Storage,
    sent_type: str,
    sent_bytes: bytes | None,
    words: str,
) -> None:
    artist = await create_user(s3_container, role="artist")
    declared = b"x" * 1000
    ticket = await _ticket(client, artist, "a.mp3", "audio/mpeg", len(declared))
    key = f"uploads/{ticket['track_id']}/source.mp3"
    body = declared if sent_bytes is None else sent_bytes
    # Whether or not the S3 server checks the signed headers, a client can always put an
    # object by other means: the API checks what storage holds before accepting it.
    bucket.put_bytes(key, body, content_type=sent_type)
    done = await client.post(
        f"/api/music/uploads/{ticket['upload_id']}/complete", headers=artist.headers
    )
    assert done.status_code == 422, done.text
    assert words in done.json()["detail"]
    track = (
        await client.get(f"/api/music/tracks/{ticket['track_id']}", headers=artist.headers)
    ).json()
    assert track["status"] == "uploading"


async def test_an_over_the_limit_upload_is_refused_before_any_url_is_signed(
    s3_container: Container, client: AsyncTestClient[Any]
) -> None:
    artist = await create_user(s3_container, role="artist")
    response = await client.post(
        "/api/music/uploads",
        json={
            "filename": "a.wav",
            "content_type": "audio/wav",
            "size_bytes": 300 * 1024 * 1024,
            "title": "big",
        },
        headers=artist.headers,
    )
    assert response.status_code == 413
