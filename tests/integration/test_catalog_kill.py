"""A worker killed (SIGKILL, with its ffmpeg) in the middle of a transcode is retried cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from lufy.bootstrap import Container, bootstrap
from lufy.catalog.processing import process_track
from lufy.settings import Settings
from lufy.web.app import create_app
from tests.helpers.accounts import create_user
from tests.helpers.media import make_tone

_JOB = """
import asyncio, sys, uuid
from lufy.bootstrap import bootstrap
from lufy.catalog.processing import process_track

async def main() -> None:
    container = bootstrap(pool_size=2)
    await container.start()
    await process_track(container.catalog, uuid.UUID(sys.argv[1]), sys.argv[2])

asyncio.run(main())
"""


async def test_a_worker_killed_mid_transcode_leaves_nothing_visible_and_the_retry_succeeds(
    settings: Settings, container: Container, admin_conn: Any, tmp_path: Path
) -> None:
    artist = await create_user(container, role="artist")
    tone = make_tone(tmp_path / "long.flac", seconds=60)
    data = tone.read_bytes()
    async with AsyncTestClient(app=create_app(bootstrap(settings))) as client:
        ticket = (
            await client.post(
                "/api/music/uploads",
                json={
                    "filename": "long.flac",
                    "content_type": "audio/flac",
                    "size_bytes": len(data),
                    "title": "Long",
                },
                headers=artist.headers,
            )
        ).json()
        url = ticket["url"].removeprefix("http://testserver.local")
        assert (await client.put(url, content=data, headers=ticket["headers"])).status_code == 200
        done = await client.post(
            f"/api/music/uploads/{ticket['upload_id']}/complete", headers=artist.headers
        )
        assert done.status_code == 202
    track_id = ticket["track_id"]

    scratch = tmp_path / "worker-tmp"
    scratch.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "JWT_SECRET": settings.jwt_secret,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LUFY_ENV": "test",
        "TMPDIR": str(scratch),
    }
    worker = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", _JOB, track_id, "job-killed"],
        env=env,
        start_new_session=True,
    )
    try:
        for _ in range(600):  # until ffmpeg has written its first segments
            if list(scratch.glob("lufy-transcode-*/hls/64k/seg_00001.ts")):
                break
            assert worker.poll() is None, "the worker finished before it could be killed"
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("ffmpeg never started writing segments")
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its ffmpeg, mid-transcode
    finally:
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    service = container.catalog
    row = await (
        await admin_conn.execute("SELECT status FROM lufy.tracks WHERE id = %s", [track_id])
    ).fetchone()
    assert row == ("processing",)
    assert service.storage.stat(f"hls/{track_id}/master.m3u8") is None

    # The retry (same job key, as the jobs runtime redelivers it) finishes the work.
    assert await process_track(service, uuid.UUID(track_id), "job-killed") == "ready"
    counts = await (
        await admin_conn.execute(
            "SELECT type, count(*) FROM lufy.events WHERE stream_id = %s GROUP BY type", [track_id]
        )
    ).fetchall()
    assert dict(counts) == {
        "catalog.upload_requested": 1,
        "catalog.track_uploaded": 1,
        "catalog.transcoding_started": 1,
        "catalog.track_transcoded": 1,
    }
    playlist = service.storage.get_bytes(f"hls/{track_id}/64k/index.m3u8").decode()
    durations = [float(x) for x in re.findall(r"#EXTINF:([\d.]+)", playlist)]
    assert abs(sum(durations) - 60) < 0.5
    assert max(durations) <= 6.1
    assert "#EXT-X-ENDLIST" in playlist
