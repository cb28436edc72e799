# ruff: noqa: ASYNC240  (tests read small generated files synchronously)
"""/api/music and /media over HTTP (in-process client), with real PostgreSQL and storage."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from litestar.testing import AsyncTestClient

from lufy.bootstrap import Container, bootstrap
from lufy.catalog.processing import process_track
from lufy.eventstore import EventStore
from lufy.media.signing import Tier, stream_key_id
from lufy.privacy.listeners import ListenerHasher
from lufy.settings import Settings
from lufy.web.app import create_app
from tests.helpers.accounts import TestUser, create_user
from tests.helpers.media import make_tone

TRACK_KEYS = {
    "id",
    "artist_id",
    "title",
    "status",
    "failure_reason",
    "duration_ms",
    "published",
    "created_at",
}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    # The app gets its own container (its lifespan starts and stops it on the client's loop);
    # the test's `container` shares the database, the secret and MEDIA_ROOT with it.
    async with AsyncTestClient(app=create_app(bootstrap(settings))) as c:
        yield c


@pytest.fixture
async def artist(container: Container) -> TestUser:
    return await create_user(container, role="artist")


async def start_upload(
    client: AsyncTestClient[Any],
    user: TestUser,
    path: Path,
    content_type: str = "audio/mpeg",
    title: str = "Tone",
) -> dict[str, Any]:
    response = await client.post(
        "/api/music/uploads",
        json={
            "filename": path.name,
            "content_type": content_type,
            "size_bytes": len(path.read_bytes()),
            "title": title,
        },
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def send_file(
    client: AsyncTestClient[Any], ticket: dict[str, Any], data: bytes, **headers: str
) -> Any:
    url = ticket["url"].removeprefix("http://testserver.local")
    return await client.put(url, content=data, headers={**ticket["headers"], **headers})


async def uploaded_track(
    client: AsyncTestClient[Any], user: TestUser, path: Path, content_type: str = "audio/mpeg"
) -> str:
    ticket = await start_upload(client, user, path, content_type)
    sent = await send_file(client, ticket, path.read_bytes())
    assert sent.status_code == 200, sent.text
    done = await client.post(
        f"/api/music/uploads/{ticket['upload_id']}/complete", headers=user.headers
    )
    assert done.status_code == 202, done.text
    assert done.json() == {"track_id": ticket["track_id"], "status": "processing"}
    return str(ticket["track_id"])


async def test_an_artist_uploads_a_tone_and_the_job_makes_it_ready_with_duration_and_loudness(
    container: Container,
    client: AsyncTestClient[Any],
    artist: TestUser,
    tmp_path: Path,
    admin_conn: Any,
) -> None:
    tone = make_tone(tmp_path / "tone.mp3", seconds=8)
    ticket = await start_upload(client, artist, tone)
    assert set(ticket) == {"upload_id", "track_id", "method", "url", "headers", "expires_at"}
    assert ticket["method"] == "PUT"
    assert ticket["url"].startswith(f"http://testserver.local/media/uploads/{ticket['upload_id']}")
    track = (
        await client.get(f"/api/music/tracks/{ticket['track_id']}", headers=artist.headers)
    ).json()
    assert track["status"] == "uploading"
    assert (await send_file(client, ticket, tone.read_bytes())).status_code == 200
    done = await client.post(
        f"/api/music/uploads/{ticket['upload_id']}/complete", headers=artist.headers
    )
    assert done.status_code == 202
    track_id = uuid.UUID(ticket["track_id"])

    status = await process_track(container.catalog, track_id, "job-1")
    assert status == "ready"
    body = (await client.get(f"/api/music/tracks/{track_id}", headers=artist.headers)).json()
    assert set(body) == TRACK_KEYS
    assert body["status"] == "ready"
    assert body["failure_reason"] is None
    assert abs(body["duration_ms"] - 8000) < 200
    assert body["artist_id"] == str(artist.id)
    assert body["published"] is False
    row = await (
        await admin_conn.execute(
            "SELECT loudness_lufs, hls_prefix FROM lufy.tracks WHERE id = %s", [track_id]
        )
    ).fetchone()
    assert row[0] is not None
    assert -40 < row[0] < 0
    assert row[1] == f"hls/{track_id}/"
    storage = container.catalog.storage
    keys = storage.list(f"hls/{track_id}/")
    assert f"hls/{track_id}/master.m3u8" in keys
    assert {k.split("/")[2] for k in keys} >= {"64k", "128k", "256k", "key.bin"}
    types = [
        r[0]
        for r in await (
            await admin_conn.execute(
                "SELECT type FROM lufy.events WHERE stream_id = %s ORDER BY global_position",
                [str(track_id)],
            )
        ).fetchall()
    ]
    assert types == [
        "catalog.upload_requested",
        "catalog.track_uploaded",
        "catalog.transcoding_started",
        "catalog.track_transcoded",
    ]


async def test_running_the_job_twice_records_one_result(
    container: Container,
    client: AsyncTestClient[Any],
    artist: TestUser,
    tmp_path: Path,
    admin_conn: Any,
) -> None:
    tone = make_tone(tmp_path / "tone.wav", seconds=4)
    track_id = uuid.UUID(await uploaded_track(client, artist, tone, "audio/wav"))
    service = container.catalog
    assert await process_track(service, track_id, "job-x") == "ready"
    assert await process_track(service, track_id, "job-x") == "ready"
    assert await process_track(service, track_id, "job-y") == "ready"
    count = await (
        await admin_conn.execute(
            "SELECT count(*) FILTER (WHERE type = 'catalog.track_transcoded'), "
            "count(*) FILTER (WHERE type = 'catalog.transcoding_started') "
            "FROM lufy.events WHERE stream_id = %s",
            [str(track_id)],
        )
    ).fetchone()
    assert count == (1, 1)


async def test_a_worker_killed_mid_transcode_is_retried_cleanly(
    container: Container,
    client: AsyncTestClient[Any],
    artist: TestUser,
    tmp_path: Path,
    admin_conn: Any,
) -> None:
    tone = make_tone(tmp_path / "tone.flac", seconds=4)
    track_id = uuid.UUID(await uploaded_track(client, artist, tone, "audio/flac"))
    service = container.catalog
    # What a killed run leaves: its start recorded, half a package with a stale segment.
    await service.start_transcoding(track_id, "job-k")
    service.storage.put_bytes(f"hls/{track_id}/128k/seg_00099.ts", b"stale")
    service.storage.put_bytes(f"hls/{track_id}/128k/index.m3u8", b"#EXTM3U\n")
    assert (await client.get(f"/api/music/tracks/{track_id}", headers=artist.headers)).json()[
        "status"
    ] == "processing"

    assert await process_track(service, track_id, "job-k") == "ready"
    keys = service.storage.list(f"hls/{track_id}/")
    assert f"hls/{track_id}/128k/seg_00099.ts" not in keys
    assert b"#EXT-X-ENDLIST" in service.storage.get_bytes(f"hls/{track_id}/128k/index.m3u8")
    started = await (
        await admin_conn.execute(
            "SELECT count(*) FROM lufy.events WHERE stream_id = %s "
            "AND type = 'catalog.transcoding_started'",
            [str(track_id)],
        )
    ).fetchone()
    assert started == (1,)


@pytest.mark.parametrize(
    ("filename", "content", "reason"),
    [
        ("notes.mp3", b"these are my lyrics, not audio\n" * 50, "not an audio file"),
        ("cut.mp3", None, "truncated"),
    ],
)
async def test_an_unusable_file_ends_failed_with_a_reason_and_the_job_succeeds(
    container: Container,
    client: AsyncTestClient[Any],
    artist: TestUser,
    tmp_path: Path,
    filename: str,
    content: bytes | None,
    reason: str,
) -> None:
    path = tmp_path / filename
    if content is None:
        full = make_tone(tmp_path / "full.mp3", seconds=10).read_bytes()
        content = full[: len(full) // 2]
    path.write_bytes(content)
    track_id = uuid.UUID(await uploaded_track(client, artist, path))
    service = container.catalog
    assert await process_track(service, track_id, "job-f") == "failed"
    assert await process_track(service, track_id, "job-f") == "failed"
    body = (await client.get(f"/api/music/tracks/{track_id}", headers=artist.headers)).json()
    assert body["status"] == "failed"
    assert reason in body["failure_reason"]
    assert service.storage.list(f"hls/{track_id}/") == []
    published = await client.post(f"/api/music/tracks/{track_id}/publish", headers=artist.headers)
    assert published.status_code == 409
    assert "only a ready track" in published.json()["detail"]


async def test_only_artists_may_upload(container: Container, client: AsyncTestClient[Any]) -> None:
    listener = await create_user(container, role="listener")
    body = {"filename": "a.mp3", "content_type": "audio/mpeg", "size_bytes": 10, "title": "A"}
    anonymous = await client.post("/api/music/uploads", json=body)
    assert anonymous.status_code == 401
    refused = await client.post("/api/music/uploads", json=body, headers=listener.headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "artists" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"size_bytes": 200 * 1024 * 1024 + 1}, 413, "over the limit"),
        ({"size_bytes": 0}, 422, "empty"),
        ({"content_type": "video/mp4", "filename": "a.mp4"}, 415, "not accepted"),
        ({"content_type": "application/pdf", "filename": "a.mp3"}, 415, "not accepted"),
        ({"content_type": "audio/flac", "filename": "a.mp3"}, 422, "should end in .flac"),
        ({"title": ""}, 400, "title"),
        ({"size_bytes": "big"}, 400, "size_bytes"),
    ],
)
async def test_an_upload_request_outside_the_limits_is_a_clear_4xx(
    client: AsyncTestClient[Any],
    artist: TestUser,
    changes: dict[str, Any],
    status: int,
    words: str,
) -> None:
    body = {
        "filename": "a.mp3",
        "content_type": "audio/mpeg",
        "size_bytes": 1000,
        "title": "A",
        **changes,
    }
    response = await client.post("/api/music/uploads", json=body, headers=artist.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in response.json()["detail"]


async def test_every_accepted_audio_type_gets_an_upload_url(
    client: AsyncTestClient[Any], artist: TestUser
) -> None:
    for filename, content_type in [
        ("a.mp3", "audio/mpeg"),
        ("a.wav", "audio/wav"),
        ("a.flac", "audio/flac"),
        ("a.m4a", "audio/mp4"),
        ("a.aac", "audio/aac"),
        ("a.ogg", "audio/ogg"),
    ]:
        response = await client.post(
            "/api/music/uploads",
            json={
                "filename": filename,
                "content_type": content_type,
                "size_bytes": 5,
                "title": "t",
            },
            headers=artist.headers,
        )
        assert response.status_code == 201, (filename, response.text)
        # Within UPLOAD_MAX_IN_FLIGHT: each unfinished upload is deleted again.
        track = response.json()["track_id"]
        assert (
            await client.delete(f"/api/music/tracks/{track}", headers=artist.headers)
        ).is_success


async def test_the_local_upload_target_enforces_the_declared_type_and_size(
    container: Container, client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path
) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(b"a" * 1000)
    ticket = await start_upload(client, artist, path)
    url = ticket["url"].removeprefix("http://testserver.local")
    wrong_type = await client.put(url, content=b"a" * 1000, headers={"Content-Type": "audio/wav"})
    assert wrong_type.status_code == 415
    assert "declared as 'audio/mpeg'" in wrong_type.json()["detail"]
    too_big = await client.put(url, content=b"a" * 1001, headers={"Content-Type": "audio/mpeg"})
    assert too_big.status_code == 413
    short = await client.put(url, content=b"a" * 10, headers={"Content-Type": "audio/mpeg"})
    assert short.status_code == 422
    assert "received 10 of 1000" in short.json()["detail"]
    empty = await client.put(url, content=b"", headers={"Content-Type": "audio/mpeg"})
    assert empty.status_code == 422
    no_token = await client.put(
        url.split("?")[0], content=b"a" * 1000, headers={"Content-Type": "audio/mpeg"}
    )
    assert no_token.status_code == 401
    forged = await client.put(
        url[:-3] + "abc", content=b"a" * 1000, headers={"Content-Type": "audio/mpeg"}
    )
    assert forged.status_code == 401
    other = await start_upload(client, artist, path)
    swapped = url.split("?")[0] + "?" + other["url"].split("?")[1]
    assert (
        await client.put(swapped, content=b"a" * 1000, headers={"Content-Type": "audio/mpeg"})
    ).status_code == 403
    # Nothing from the refused attempts was kept.
    storage = container.catalog.storage
    assert storage.list(f"uploads/{ticket['track_id']}/") == []
    ok = await client.put(url, content=b"a" * 1000, headers={"Content-Type": "audio/mpeg"})
    assert ok.status_code == 200
    assert ok.json() == {"upload_id": ticket["upload_id"], "size_bytes": 1000}
    # Once completed, the source cannot be swapped under the job.
    done = await client.post(
        f"/api/music/uploads/{ticket['upload_id']}/complete", headers=artist.headers
    )
    assert done.status_code == 202
    late = await client.put(url, content=b"b" * 1000, headers={"Content-Type": "audio/mpeg"})
    assert late.status_code == 409
    assert storage.get_bytes(f"uploads/{ticket['track_id']}/source.mp3") == b"a" * 1000


async def test_completing_before_the_upload_is_a_409_and_changes_nothing(
    client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path
) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(b"a" * 100)
    ticket = await start_upload(client, artist, path)
    early = await client.post(
        f"/api/music/uploads/{ticket['upload_id']}/complete", headers=artist.headers
    )
    assert early.status_code == 409
    assert "not been uploaded yet" in early.json()["detail"]
    track = (
        await client.get(f"/api/music/tracks/{ticket['track_id']}", headers=artist.headers)
    ).json()
    assert track["status"] == "uploading"


async def test_another_artists_upload_id_is_not_found(
    container: Container, client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path
) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(b"a" * 100)
    ticket = await start_upload(client, artist, path)
    await send_file(client, ticket, path.read_bytes())
    intruder = await create_user(container, role="artist")
    response = await client.post(
        f"/api/music/uploads/{ticket['upload_id']}/complete", headers=intruder.headers
    )
    assert response.status_code == 404
    unknown = await client.post(
        f"/api/music/uploads/{uuid.uuid4()}/complete", headers=artist.headers
    )
    assert unknown.status_code == 404
    track = (
        await client.get(f"/api/music/tracks/{ticket['track_id']}", headers=artist.headers)
    ).json()
    assert track["status"] == "uploading"


async def test_completing_twice_is_harmless(
    client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path, admin_conn: Any
) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(b"a" * 100)
    track_id = await uploaded_track(client, artist, path)
    again = await client.post(
        "/api/music/uploads/"
        + str(
            (
                await (
                    await admin_conn.execute(
                        "SELECT upload_id FROM lufy.tracks WHERE id = %s", [track_id]
                    )
                ).fetchone()
            )[0]
        )
        + "/complete",
        headers=artist.headers,
    )
    assert again.status_code == 202
    count = await (
        await admin_conn.execute(
            "SELECT count(*) FROM lufy.events WHERE stream_id = %s "
            "AND type = 'catalog.track_uploaded'",
            [track_id],
        )
    ).fetchone()
    assert count == (1,)


async def test_owners_see_their_tracks_in_every_state_and_others_only_published_ones(
    container: Container, client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path
) -> None:
    tone = make_tone(tmp_path / "tone.ogg", seconds=3)
    ready_id = await uploaded_track(client, artist, tone, "audio/ogg")
    assert await process_track(container.catalog, uuid.UUID(ready_id), "j") == "ready"
    path = tmp_path / "draft.mp3"
    path.write_bytes(b"a" * 10)
    draft = await start_upload(client, artist, path, title="Draft")
    listener = await create_user(container, role="listener")
    other_artist = await create_user(container, role="artist")

    mine = (await client.get("/api/music/tracks", headers=artist.headers)).json()["tracks"]
    assert {t["id"] for t in mine} == {ready_id, draft["track_id"]}
    for viewer in (listener.headers, other_artist.headers, {}):
        seen = (await client.get("/api/music/tracks", headers=viewer)).json()["tracks"]
        assert seen == []
        hidden = await client.get(f"/api/music/tracks/{ready_id}", headers=viewer)
        assert hidden.status_code == 404
        assert (
            await client.get(f"/api/music/tracks/{ready_id}/stream", headers=viewer)
        ).status_code == 404

    # Strangers cannot change it either.
    for path_ in ("publish", "unpublish"):
        assert (
            await client.post(f"/api/music/tracks/{ready_id}/{path_}", headers=other_artist.headers)
        ).status_code == 404
    assert (
        await client.patch(
            f"/api/music/tracks/{ready_id}", json={"title": "Mine"}, headers=other_artist.headers
        )
    ).status_code == 404
    assert (
        await client.delete(f"/api/music/tracks/{ready_id}", headers=other_artist.headers)
    ).status_code == 404

    published = await client.post(f"/api/music/tracks/{ready_id}/publish", headers=artist.headers)
    assert published.status_code == 200
    assert published.json()["published"] is True
    for viewer in (listener.headers, other_artist.headers, {}):
        seen = (await client.get("/api/music/tracks", headers=viewer)).json()["tracks"]
        assert [t["id"] for t in seen] == [ready_id]
        assert (
            await client.get(f"/api/music/tracks/{ready_id}", headers=viewer)
        ).status_code == 200
    draft_publish = await client.post(
        f"/api/music/tracks/{draft['track_id']}/publish", headers=artist.headers
    )
    assert draft_publish.status_code == 409

    unpublished = await client.post(
        f"/api/music/tracks/{ready_id}/unpublish", headers=artist.headers
    )
    assert unpublished.json()["published"] is False
    assert (await client.get("/api/music/tracks", headers=listener.headers)).json()["tracks"] == []


async def test_an_artist_renames_a_track_and_a_blank_title_is_refused(
    client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path
) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(b"a" * 10)
    ticket = await start_upload(client, artist, path)
    renamed = await client.patch(
        f"/api/music/tracks/{ticket['track_id']}",
        json={"title": "New name"},
        headers=artist.headers,
    )
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "New name"
    blank = await client.patch(
        f"/api/music/tracks/{ticket['track_id']}", json={"title": "  "}, headers=artist.headers
    )
    assert blank.status_code == 422
    unknown_field = await client.patch(
        f"/api/music/tracks/{ticket['track_id']}", json={"status": "ready"}, headers=artist.headers
    )
    assert unknown_field.status_code == 400


async def test_the_stream_endpoint_gives_a_token_url_and_records_the_authorization(
    container: Container,
    client: AsyncTestClient[Any],
    artist: TestUser,
    tmp_path: Path,
    admin_conn: Any,
) -> None:
    tone = make_tone(tmp_path / "tone.m4a", seconds=3)
    track_id = await uploaded_track(client, artist, tone, "audio/mp4")
    not_ready = await client.get(f"/api/music/tracks/{track_id}/stream", headers=artist.headers)
    assert not_ready.status_code == 409
    await process_track(container.catalog, uuid.UUID(track_id), "j")

    own = await client.get(f"/api/music/tracks/{track_id}/stream", headers=artist.headers)
    assert own.status_code == 200
    grant = own.json()
    assert set(grant) == {"url", "token", "expires_at", "grant_id"}
    assert grant["url"] == (
        f"http://testserver.local/media/hls/{grant['token']}/{track_id}/master.m3u8"
    )
    claims = jwt.decode(grant["token"], container.settings.jwt_secret, algorithms=["HS256"])
    assert claims["jti"] == grant["grant_id"]
    assert claims["sid"] == track_id
    assert claims["tier"] == "premium"
    kid = jwt.get_unverified_header(grant["token"])["kid"]
    assert kid == stream_key_id(container.settings.jwt_secret)
    await client.post(f"/api/music/tracks/{track_id}/publish", headers=artist.headers)
    anyone = await client.get(f"/api/music/tracks/{track_id}/stream")
    assert anyone.status_code == 200
    rows = await (
        await admin_conn.execute(
            "SELECT data FROM lufy.events WHERE type = 'catalog.stream_authorized' "
            "AND stream_id = %s ORDER BY global_position",
            [track_id],
        )
    ).fetchall()
    # The grant names its listener by analytics' keyed hash, never by user id (privacy).
    key = await ListenerHasher().key(container.db, artist.id)
    assert [r[0].get("listener_key") for r in rows] == [key, None]
    assert [r[0].get("listener_id") for r in rows] == [None, None]
    assert [r[0]["grant_id"] for r in rows] == [grant["grant_id"], anyone.json()["grant_id"]]
    assert grant["grant_id"] != anyone.json()["grant_id"]


async def test_local_delivery_serves_the_package_as_written_under_the_token_path(
    container: Container, client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path
) -> None:
    tone = make_tone(tmp_path / "tone.mp3", seconds=3)
    track_id = await uploaded_track(client, artist, tone)
    service = container.catalog
    await process_track(service, uuid.UUID(track_id), "j")
    grant = (
        await client.get(f"/api/music/tracks/{track_id}/stream", headers=artist.headers)
    ).json()
    token = grant["token"]
    base = f"/media/hls/{token}/{track_id}"
    master = await client.get(f"{base}/master.m3u8")
    assert master.status_code == 200
    assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    # Static: byte for byte what the transcoder wrote, relative URIs without any token.
    assert master.content == service.storage.get_bytes(f"hls/{track_id}/master.m3u8")
    assert "\n128k/index.m3u8\n" in master.text
    assert "token" not in master.text
    variant = await client.get(f"{base}/128k/index.m3u8")
    assert 'URI="../key.bin"' in variant.text
    assert "\nseg_00000.ts\n" in variant.text
    segment = await client.get(f"{base}/128k/seg_00000.ts")
    assert segment.status_code == 200
    key = await client.get(f"{base}/key.bin")
    assert len(key.content) == 16
    assert key.headers["cache-control"] == "private, no-store"
    # The segment is AES-128 encrypted: only the key (served to a token holder) opens it.
    assert len(segment.content) % 16 == 0
    iv = bytes.fromhex(re.search(r"IV=0x([0-9a-fA-F]{32})", variant.text).group(1))
    decryptor = Cipher(algorithms.AES(key.content), modes.CBC(iv)).decryptor()
    plain = decryptor.update(segment.content) + decryptor.finalize()
    assert plain[:1] == b"\x47"  # MPEG-TS sync byte
    assert segment.content[:1] != b"\x47" or plain != segment.content

    # The old shape, a token in the query string, opens nothing.
    old_shape = await client.get(f"/media/hls/{track_id}/master.m3u8?token={token}")
    assert old_shape.status_code == 403
    assert old_shape.headers["content-type"].startswith("application/problem+json")
    forged = await client.get(f"/media/hls/{token[:-2]}xx/{track_id}/key.bin")
    assert forged.status_code == 403
    assert "signature" in forged.json()["detail"]
    other = (await client.get(f"/media/hls/{token}/{uuid.uuid4()}/master.m3u8")).json()
    assert other["detail"] == "the stream token is for another track"
    for bad in ("..%2F..%2Fuploads%2Fx", "128k/..%2F..%2Fx.ts", "%2e%2e/%2e%2e/etc/passwd"):
        response = await client.get(f"{base}/{bad}")
        assert response.status_code == 403, (bad, response.status_code)
    assert (await client.get(f"{base}/nope.ts")).status_code == 404


async def test_a_free_listener_gets_the_master_playlist_without_256k_and_not_its_segments(
    container: Container, settings: Settings, artist: TestUser, tmp_path: Path
) -> None:
    asked: list[uuid.UUID | None] = []

    async def free_for_everyone(conn: Any, listener_id: uuid.UUID | None, now: datetime) -> Tier:
        asked.append(listener_id)
        return "free"

    app_container = bootstrap(settings, tier_resolver=free_for_everyone)
    async with AsyncTestClient(app=create_app(app_container)) as client:
        tone = make_tone(tmp_path / "tone.mp3", seconds=3)
        track_id = await uploaded_track(client, artist, tone)
        await process_track(container.catalog, uuid.UUID(track_id), "j")
        grant = (
            await client.get(f"/api/music/tracks/{track_id}/stream", headers=artist.headers)
        ).json()
        assert asked == [artist.id]
        claims = jwt.decode(grant["token"], settings.jwt_secret, algorithms=["HS256"])
        assert claims["tier"] == "free"
        base = f"/media/hls/{grant['token']}/{track_id}"
        master = await client.get(f"{base}/master.m3u8")
        assert master.status_code == 200
        assert "128k/index.m3u8" in master.text
        assert "64k/index.m3u8" in master.text
        assert "256k" not in master.text
        assert (await client.get(f"{base}/128k/seg_00000.ts")).status_code == 200
        for path in ("256k/index.m3u8", "256k/seg_00000.ts"):
            refused = await client.get(f"{base}/{path}")
            assert refused.status_code == 403
            detail = refused.json()["detail"]
            assert detail == "the free tier does not include the 256 kbit/s rendition"


async def test_deleting_a_track_removes_its_media_and_revokes_streaming(
    container: Container, client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path
) -> None:
    tone = make_tone(tmp_path / "tone.mp3", seconds=3)
    track_id = await uploaded_track(client, artist, tone)
    service = container.catalog
    await process_track(service, uuid.UUID(track_id), "j")
    await client.post(f"/api/music/tracks/{track_id}/publish", headers=artist.headers)
    token = (await client.get(f"/api/music/tracks/{track_id}/stream")).json()["token"]
    master = f"/media/hls/{token}/{track_id}/master.m3u8"
    assert (await client.get(master)).status_code == 200

    deleted = await client.delete(f"/api/music/tracks/{track_id}", headers=artist.headers)
    assert deleted.status_code == 204
    assert service.storage.list(f"hls/{track_id}/") == []
    assert service.storage.list(f"uploads/{track_id}/") == []
    assert (await client.get(master)).status_code == 404
    assert (await client.get(f"/api/music/tracks/{track_id}/stream")).status_code == 404
    assert (
        await client.get(f"/api/music/tracks/{track_id}", headers=artist.headers)
    ).status_code == 404
    assert (await client.get("/api/music/tracks", headers=artist.headers)).json()["tracks"] == []
    assert (
        await client.delete(f"/api/music/tracks/{track_id}", headers=artist.headers)
    ).status_code == 404
    # A late job for a deleted track does nothing.
    assert await process_track(service, uuid.UUID(track_id), "late") == "deleted"


async def test_the_reactor_enqueues_process_upload_for_each_uploaded_track(
    client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path, admin_conn: Any
) -> None:
    from lufy.catalog.reactors import REACTORS

    path = tmp_path / "x.mp3"
    path.write_bytes(b"a" * 10)
    track_id = await uploaded_track(client, artist, path)
    store = EventStore()
    events = await store.read_stream(admin_conn, "track", track_id)
    specs = [spec for e in events for r in REACTORS for spec in r.jobs(e) if e.type in r.handles]
    assert len(specs) == 1
    uploaded = next(e for e in events if e.type == "catalog.track_uploaded")
    assert specs[0].actor == "process_upload"
    assert specs[0].queue == "media-processing"
    assert specs[0].payload == {"track_id": track_id}
    assert specs[0].key == str(uploaded.event_id)


async def test_rebuilding_the_tracks_read_model_from_the_log_reproduces_it(
    container: Container,
    client: AsyncTestClient[Any],
    artist: TestUser,
    tmp_path: Path,
    admin_conn: Any,
    settings: Settings,
) -> None:
    from lufy.catalog.projections import TRACKS
    from lufy.projections.rebuild import rebuild

    service = container.catalog
    tone = make_tone(tmp_path / "tone.mp3", seconds=2)
    ready = await uploaded_track(client, artist, tone)
    await process_track(service, uuid.UUID(ready), "j1")
    await client.post(f"/api/music/tracks/{ready}/publish", headers=artist.headers)
    await client.patch(
        f"/api/music/tracks/{ready}", json={"title": "Renamed"}, headers=artist.headers
    )
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"junk" * 100)
    failed = await uploaded_track(client, artist, junk)
    await process_track(service, uuid.UUID(failed), "j2")
    gone = await uploaded_track(client, artist, junk)
    await client.delete(f"/api/music/tracks/{gone}", headers=artist.headers)
    await start_upload(client, artist, junk, title="Still uploading")

    query = (
        "SELECT id, artist_id, title, status, failure_reason, duration_ms, loudness_lufs, "
        "published, published_at, deleted_at, created_at, upload_id, hls_prefix, version "
        "FROM lufy.tracks ORDER BY id"
    )
    before = await (await admin_conn.execute(query)).fetchall()
    assert len(before) == 4
    result = await rebuild(settings.DATABASE_URL, TRACKS, compare=True)
    assert result.swapped
    assert result.differences.get("tracks", (0, 0)) == (0, 0)
    after = await (await admin_conn.execute(query)).fetchall()
    assert after == before


async def test_a_file_far_above_the_json_body_limit_streams_through_the_local_upload_target(
    container: Container, client: AsyncTestClient[Any], artist: TestUser, tmp_path: Path
) -> None:
    path = tmp_path / "big.wav"
    path.write_bytes(b"\x01" * (6 * 1024 * 1024))
    ticket = await start_upload(client, artist, path, content_type="audio/wav")
    sent = await send_file(client, ticket, path.read_bytes())
    assert sent.status_code == 200, sent.text
    info = container.catalog.storage.stat(f"uploads/{ticket['track_id']}/source.wav")
    assert info is not None
    assert info.size == 6 * 1024 * 1024


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/music/uploads", {"content": b"not json"}),
        ("POST", "/api/music/uploads", {"json": []}),
        ("POST", "/api/music/uploads", {"json": {"filename": "a.mp3"}}),
        (
            "POST",
            "/api/music/uploads",
            {
                "json": {
                    "filename": "a.mp3",
                    "content_type": "audio/mpeg",
                    "size_bytes": 10,
                    "title": "x" * 500,
                }
            },
        ),
        (
            "POST",
            "/api/music/uploads",
            {
                "json": {
                    "filename": "a.mp3",
                    "content_type": "audio/mpeg",
                    "size_bytes": -5,
                    "title": "x",
                }
            },
        ),
        (
            "POST",
            "/api/music/uploads",
            {
                "json": {
                    "filename": "a.mp3",
                    "content_type": "audio/mpeg",
                    "size_bytes": 10**30,
                    "title": "x",
                }
            },
        ),
        (
            "POST",
            "/api/music/uploads",
            {
                "json": {
                    "filename": "a.mp3",
                    "content_type": "audio/mpeg",
                    "size_bytes": 10,
                    "title": "x",
                    "artist_id": str(uuid.uuid4()),
                }
            },
        ),
        ("POST", "/api/music/uploads/not-a-uuid/complete", {}),
        ("GET", "/api/music/tracks?limit=0", {}),
        ("GET", "/api/music/tracks?limit=100000", {}),
        ("GET", "/api/music/tracks?offset=-1", {}),
        ("GET", "/api/music/tracks?status=bogus", {}),
        ("GET", "/api/music/tracks?artist_id=nope", {}),
        ("GET", "/api/music/tracks?published=maybe", {}),
        ("GET", "/api/music/tracks/123", {}),
        ("PATCH", f"/api/music/tracks/{uuid.uuid4()}", {"json": {"title": None}}),
        ("PATCH", f"/api/music/tracks/{uuid.uuid4()}", {"content": b"{"}),
        ("GET", f"/api/music/tracks/{uuid.uuid4()}/stream", {}),
        ("GET", f"/media/hls/{uuid.uuid4()}/master.m3u8?token=" + "a" * 5000, {}),
        ("PUT", f"/media/uploads/{uuid.uuid4()}?token=x.y.z", {"content": b"abc"}),
    ],
)
async def test_malformed_requests_get_a_clear_4xx_never_a_500(
    client: AsyncTestClient[Any],
    artist: TestUser,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    response = await client.request(method, path, headers=artist.headers, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if response.status_code != 404 or response.content:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]
