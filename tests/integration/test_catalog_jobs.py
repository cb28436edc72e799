"""The real runtime: catalog.track_uploaded -> reactor (projector) -> media-processing worker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from lufy.bootstrap import Container
from lufy.catalog.jobs import GAVE_UP, give_up_on_upload
from lufy.catalog.reactors import MediaProcessingReactor
from lufy.catalog.schemas import UploadCreate
from lufy.catalog.service import CatalogService
from lufy.jobs.testing import InProcessWorker
from lufy.projections.runner import Projector, ProjectorOptions
from lufy.settings import Settings
from lufy.web.auth import Principal
from tests.helpers.accounts import create_user
from tests.helpers.media import make_tone

FAST = ProjectorOptions(
    batch_size=100,
    poll_interval=0.1,
    retry_delays=(0.05, 0.1),
    failed_check_interval=0.1,
    lead_retry_interval=0.2,
    maintenance=False,
)


async def _status(conn: AsyncConnection[Any], track_id: uuid.UUID) -> tuple[Any, ...] | None:
    cur = await conn.execute(
        "SELECT status, failure_reason FROM lufy.tracks WHERE id = %s", [track_id]
    )
    return await cur.fetchone()


async def _artist_and_service(container: Container) -> tuple[Principal, CatalogService]:
    user = await create_user(container, role="artist")
    artist = Principal(user_id=user.id, role="artist", session_id=user.session_id)
    return artist, container.catalog


async def test_an_uploaded_track_is_processed_by_the_media_processing_worker(
    settings: Settings, container: Container, admin_conn: AsyncConnection[Any], tmp_path: Path
) -> None:
    artist, service = await _artist_and_service(container)
    good = make_tone(tmp_path / "good.ogg", seconds=3)
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00not audio" * 100)

    projector = Projector(settings, [MediaProcessingReactor()], options=FAST)
    running = asyncio.create_task(projector.run())
    tracks: dict[str, uuid.UUID] = {}
    try:
        # A new reactor starts at the head of the log: append only once it has its place.
        for _ in range(600):
            cur = await admin_conn.execute(
                "SELECT 1 FROM lufy.checkpoints WHERE name = %s", [MediaProcessingReactor.name]
            )
            if await cur.fetchone():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the reactor never started")
        with InProcessWorker(settings, queues=["media-processing"], threads=1) as worker:
            for name, path, ctype in (("good", good, "audio/ogg"), ("bad", bad, "audio/mpeg")):
                data = path.read_bytes()
                ticket = await service.request_upload(
                    artist,
                    UploadCreate(
                        filename=path.name, content_type=ctype, size_bytes=len(data), title=name
                    ),
                )
                service.storage.put_bytes(
                    f"uploads/{ticket.track_id}/source{path.suffix}", data, content_type=ctype
                )
                await service.complete_upload(artist, ticket.upload_id)
                tracks[name] = ticket.track_id
            for _ in range(1200):  # generous: the machine is shared
                states = [await _status(admin_conn, t) for t in tracks.values()]
                if all(s is not None and s[0] in ("ready", "failed") for s in states):
                    break
                await asyncio.sleep(0.1)
            worker.wait_until_finished(timeout=60)
    finally:
        projector.stop()
        await asyncio.wait_for(running, timeout=20)

    assert await _status(admin_conn, tracks["good"]) == ("ready", None)
    status, reason = await _status(admin_conn, tracks["bad"])  # type: ignore[misc]
    assert status == "failed"
    assert "not an audio file" in reason
    cur = await admin_conn.execute(
        "SELECT status, count(*) FROM lufy.jobs WHERE actor = 'process_upload' GROUP BY 1"
    )
    # A bad file is a failed *track*, not a failed job: nothing is retried or dead.
    assert dict(await cur.fetchall()) == {"done": 2}


async def test_a_dead_processing_job_fails_its_track_instead_of_leaving_it_processing(
    settings: Settings, container: Container, admin_conn: AsyncConnection[Any], tmp_path: Path
) -> None:
    artist, service = await _artist_and_service(container)
    data = make_tone(tmp_path / "tone.ogg", seconds=1).read_bytes()
    ticket = await service.request_upload(
        artist,
        UploadCreate(
            filename="tone.ogg", content_type="audio/ogg", size_bytes=len(data), title="t"
        ),
    )
    service.storage.put_bytes(
        f"uploads/{ticket.track_id}/source.ogg", data, content_type="audio/ogg"
    )
    await service.complete_upload(artist, ticket.upload_id)
    assert await _status(admin_conn, ticket.track_id) == ("processing", None)

    payload = {"track_id": str(ticket.track_id)}
    with InProcessWorker(settings, queues=["media-processing"]):  # the worker's runtime
        await give_up_on_upload(payload, job_key="job-1", error="RuntimeError: disk full")
        await give_up_on_upload(payload, job_key="job-1", error="RuntimeError: disk full")

    assert await _status(admin_conn, ticket.track_id) == ("failed", GAVE_UP)
    cur = await admin_conn.execute(
        "SELECT count(*) FROM lufy.events WHERE type = 'catalog.transcoding_failed' "
        "AND data->>'track_id' = %s",
        [str(ticket.track_id)],
    )
    assert await cur.fetchone() == (1,)  # called twice, failed once
