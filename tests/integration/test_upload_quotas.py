"""Per-artist upload limits (UPLOAD_MAX_IN_FLIGHT, UPLOAD_MAX_STORED_BYTES) and the sweep of
uploads never completed: one artist cannot fill storage or hold unbounded unfinished uploads."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from psycopg import AsyncConnection

from lufy.bootstrap import Container, bootstrap
from lufy.catalog import jobs as catalog_jobs  # declares the jobs the in-process worker runs
from lufy.catalog.processing import process_track
from lufy.catalog.reactors import UploadCleanupReactor
from lufy.catalog.schemas import UploadCreate
from lufy.catalog.service import ABANDONED_REASON
from lufy.jobs.testing import InProcessWorker
from lufy.projections.maintenance import UPLOAD_SWEEP_ACTOR, schedule_upload_sweep
from lufy.projections.runner import Projector, ProjectorOptions
from lufy.settings import Settings
from lufy.web.app import create_app
from lufy.web.auth import Principal
from tests.helpers.accounts import TestUser, create_user

FAST = ProjectorOptions(
    batch_size=100,
    poll_interval=0.1,
    retry_delays=(0.05, 0.1),
    failed_check_interval=0.1,
    lead_retry_interval=0.2,
    maintenance=False,
)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(bootstrap(settings))) as c:
        yield c


async def request_upload(
    client: AsyncTestClient[Any], user: TestUser, size: int = 1000, name: str = "song.mp3"
) -> Any:
    return await client.post(
        "/api/music/uploads",
        json={"filename": name, "content_type": "audio/mpeg", "size_bytes": size, "title": name},
        headers=user.headers,
    )


async def test_an_artist_cannot_open_more_uploads_than_upload_max_in_flight(
    client: AsyncTestClient[Any], container: Container
) -> None:
    artist = await create_user(container, role="artist")
    other = await create_user(container, role="artist")
    limit = container.settings.UPLOAD_MAX_IN_FLIGHT
    assert limit == 5
    opened = [await request_upload(client, artist) for _ in range(limit)]
    assert [r.status_code for r in opened] == [201] * limit
    refused = await request_upload(client, artist)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    # The earliest unfinished upload's URL expires within the hour: then a place frees.
    assert 1 <= int(refused.headers["retry-after"]) <= 3601
    problem = refused.json()
    assert problem["status"] == 429
    assert "5 unfinished uploads and the limit is 5" in problem["detail"]
    # Another artist has places of their own.
    assert (await request_upload(client, other)).status_code == 201


async def test_concurrent_upload_requests_cannot_both_take_the_last_place(
    client: AsyncTestClient[Any], container: Container
) -> None:
    artist = await create_user(container, role="artist")
    responses = await asyncio.gather(*(request_upload(client, artist) for _ in range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 5 + [429] * 7


async def test_an_upload_that_ends_in_failure_frees_its_place(
    client: AsyncTestClient[Any], container: Container, tmp_path: Any
) -> None:
    artist = await create_user(container, role="artist")
    service = container.catalog
    data = b"this is not audio\n" * 20
    tickets = [(await request_upload(client, artist, size=len(data))).json() for _ in range(5)]
    assert (await request_upload(client, artist)).status_code == 429
    first = tickets[0]
    service.storage.put_bytes(
        f"uploads/{first['track_id']}/source.mp3", data, content_type="audio/mpeg"
    )
    done = await client.post(
        f"/api/music/uploads/{first['upload_id']}/complete", headers=artist.headers
    )
    assert done.status_code == 202
    # Processing still counts as in flight...
    assert (await request_upload(client, artist)).status_code == 429
    assert await process_track(service, uuid.UUID(first["track_id"]), "job-q") == "failed"
    # ...a finished (here failed) one does not.
    assert (await request_upload(client, artist)).status_code == 201


async def test_an_artist_cannot_store_more_than_upload_max_stored_bytes(
    settings: Settings,
) -> None:
    small = settings.model_copy(update={"UPLOAD_MAX_STORED_BYTES": "1 MB"})
    container = bootstrap(small)
    await container.start()
    try:
        artist = await create_user(container, role="artist")
        async with AsyncTestClient(app=create_app(bootstrap(small))) as client:
            first = await request_upload(client, artist, size=600_000)
            assert first.status_code == 201
            refused = await request_upload(client, artist, size=400_001)
            fits = await request_upload(client, artist, size=400_000)
            assert fits.status_code == 201
            deleted = await client.delete(
                f"/api/music/tracks/{first.json()['track_id']}", headers=artist.headers
            )
            assert deleted.status_code in (200, 204)
            after_delete = await request_upload(client, artist, size=600_000)
    finally:
        await container.stop()
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("application/problem+json")
    detail = refused.json()["detail"]
    assert "take 600000 bytes" in detail
    assert "upload of 400001 bytes would pass your storage limit of 1000000 bytes" in detail
    # Deleting a track gives its bytes back.
    assert after_delete.status_code == 201


async def _wait_for(predicate: Any, what: str, tries: int = 600) -> None:
    for _ in range(tries):  # generous: the machine is shared
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_upload_never_completed_within_24_hours_is_failed_and_its_source_deleted(
    settings: Settings, container: Container, admin_conn: AsyncConnection[Any]
) -> None:
    user = await create_user(container, role="artist")
    artist = Principal(user_id=user.id, role="artist", session_id=user.session_id)
    service = container.catalog
    stale, fresh, completed = [
        await service.request_upload(
            artist,
            UploadCreate(
                filename="song.mp3", content_type="audio/mpeg", size_bytes=100, title=name
            ),
        )
        for name in ("stale", "fresh", "completed")
    ]
    for ticket in (stale, fresh, completed):
        service.storage.put_bytes(
            f"uploads/{ticket.track_id}/source.mp3", b"\xff\xfb" * 50, content_type="audio/mpeg"
        )
    await service.complete_upload(artist, completed.upload_id)
    # Requested 25 hours ago (the read model's clock is the request's event time).
    await admin_conn.execute(
        "UPDATE lufy.tracks SET created_at = now() - interval '25 hours' WHERE id = ANY(%s)",
        [[stale.track_id, completed.track_id]],
    )

    # The scheduler enqueues the sweep by name: it is the job the catalog declares.
    assert catalog_jobs.sweep_abandoned_uploads.__name__ == UPLOAD_SWEEP_ACTOR
    projector = Projector(settings, [UploadCleanupReactor()], options=FAST)
    running = asyncio.create_task(projector.run())
    try:

        async def reactor_started() -> bool:
            cur = await admin_conn.execute(
                "SELECT 1 FROM lufy.checkpoints WHERE name = %s", [UploadCleanupReactor.name]
            )
            return await cur.fetchone() is not None

        await _wait_for(reactor_started, "the reactor's checkpoint")
        with InProcessWorker(settings, queues=["media-processing"], threads=1) as worker:
            assert worker.runtime is not None
            async with await AsyncConnection.connect(
                settings.DATABASE_URL, autocommit=True
            ) as conn:
                assert await schedule_upload_sweep(conn, worker.runtime)

            async def source_gone() -> bool:
                return service.storage.stat(f"uploads/{stale.track_id}/source.mp3") is None

            await _wait_for(source_gone, "the stale source to be deleted")
            worker.wait_until_finished(timeout=60)
    finally:
        projector.stop()
        await asyncio.wait_for(running, timeout=20)

    track = await service.get_track(artist, stale.track_id)
    assert (track.status, track.failure_reason) == ("failed", ABANDONED_REASON)
    # A fresh upload and a completed one keep their files.
    assert service.storage.stat(f"uploads/{fresh.track_id}/source.mp3") is not None
    assert service.storage.stat(f"uploads/{completed.track_id}/source.mp3") is not None
    assert (await service.get_track(artist, fresh.track_id)).status == "uploading"
    cur = await admin_conn.execute(
        "SELECT count(*) FROM lufy.events WHERE type = 'catalog.upload_abandoned'"
    )
    assert (await cur.fetchone())[0] == 1
    cur = await admin_conn.execute(
        "SELECT actor, status FROM lufy.jobs WHERE actor IN (%s, 'delete_upload_source')",
        [UPLOAD_SWEEP_ACTOR],
    )
    assert sorted(await cur.fetchall()) == [
        ("delete_upload_source", "done"),
        (UPLOAD_SWEEP_ACTOR, "done"),
    ]
    # The freed source no longer counts against the artist's stored bytes, and the upload is
    # closed: completing it now changes nothing.
    cur = await admin_conn.execute(
        "SELECT source_deleted_at IS NOT NULL FROM lufy.tracks WHERE id = %s", [stale.track_id]
    )
    assert (await cur.fetchone())[0] is True
    again = await service.complete_upload(artist, stale.upload_id)
    assert again.status == "failed"


async def test_a_second_sweep_appends_nothing_new(
    container: Container, admin_conn: AsyncConnection[Any]
) -> None:
    user = await create_user(container, role="artist")
    artist = Principal(user_id=user.id, role="artist", session_id=user.session_id)
    service = container.catalog
    ticket = await service.request_upload(
        artist,
        UploadCreate(filename="a.mp3", content_type="audio/mpeg", size_bytes=10, title="a"),
    )
    later = datetime.now(UTC) + timedelta(hours=25)
    assert await service.abandon_stale_uploads(now=later) == 1
    assert await service.abandon_stale_uploads(now=later) == 0
    assert await service.abandon_stale_uploads(now=datetime.now(UTC)) == 0
    cur = await admin_conn.execute(
        "SELECT count(*) FROM lufy.events WHERE type = 'catalog.upload_abandoned'"
    )
    assert (await cur.fetchone())[0] == 1
    assert (await service.get_track(artist, ticket.track_id)).status == "failed"


async def test_the_maintenance_loop_schedules_the_upload_sweep(
    settings: Settings, admin_conn: AsyncConnection[Any]
) -> None:
    options = dataclasses.replace(
        FAST, maintenance=True, refresh_interval=0, upload_sweep_interval=0.2
    )
    projector = Projector(settings, [UploadCleanupReactor()], options=options)
    running = asyncio.create_task(projector.run())
    try:

        async def scheduled() -> bool:
            cur = await admin_conn.execute(
                "SELECT count(*) FROM lufy.jobs WHERE actor = %s", [UPLOAD_SWEEP_ACTOR]
            )
            return bool((await cur.fetchone())[0])

        await _wait_for(scheduled, "a scheduled sweep")
    finally:
        projector.stop()
        await asyncio.wait_for(running, timeout=20)
    cur = await admin_conn.execute(
        "SELECT queue, count(*) FROM lufy.jobs WHERE actor = %s GROUP BY 1", [UPLOAD_SWEEP_ACTOR]
    )
    # One at a time: nothing ran it here, so the first stays the only one.
    assert await cur.fetchall() == [("media-processing", 1)]
