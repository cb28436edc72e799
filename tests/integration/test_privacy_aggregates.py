"""Privacy: forgetting people leaves every artist's dashboard numbers as they were (listeners
are counted by keyed hash, not by identity), and the erasure follow-up job finishes a half-done
erasure."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from lufy.accounts.events import UserErased
from lufy.accounts.reactors import ErasureFollowUp
from lufy.analytics.importer import import_lines
from lufy.analytics.ingest import Ingestor
from lufy.bootstrap import Container
from lufy.catalog.schemas import UploadCreate
from lufy.eventstore import EventMetadata, RecordedEvent
from lufy.privacy.erasure import delete_tracks, forget
from lufy.settings import Settings
from lufy.testing.analytics import LocalProjector, insert_track
from tests.helpers.accounts import create_user
from tests.helpers.dashboards import artist_dashboards


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


async def test_forgetting_listeners_leaves_every_artists_dashboard_numbers_unchanged(
    container: Container, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    admin = await create_user(container, role="admin")
    artists = [await create_user(container, role="artist") for _ in range(2)]
    tracks = {a.id: await insert_track(admin_conn, a.id) for a in artists}
    listeners = [await create_user(container) for _ in range(3)]
    now = datetime.now(UTC).replace(microsecond=0)
    lines = io.StringIO()
    for n, listener in enumerate(listeners):
        for k, artist in enumerate(artists):
            session = str(uuid.uuid4())
            started = now - timedelta(days=1 + n, hours=k)
            for type_, offset, ms in (
                ("playback.started", 0, 0),
                ("playback.progress", 1, 40_000 + 1000 * n),
                ("track.liked", 2, None),
            ):
                event: dict[str, Any] = {
                    "event_id": str(uuid.uuid4()),
                    "type": type_,
                    "occurred_at": (started + timedelta(seconds=offset)).isoformat(),
                    "session_id": session,
                    "track_id": str(tracks[artist.id]),
                    "listener_id": str(listener.id),
                }
                if ms is not None:
                    event["listened_ms"] = ms
                lines.write(json.dumps(event) + "\n")
    lines.seek(0)
    report = await import_lines(Ingestor(container.db, container.store, sample_rate=1.0), lines)
    assert report.rejected_count == 0, report.rejected
    projector = LocalProjector(container.db, container.store)
    await projector.run()

    async def numbers() -> list[Any]:
        return await artist_dashboards(container, admin.headers, [a.id for a in artists])

    before = await numbers()
    assert before[0]["streams"] == 3
    assert before[0]["listeners"] == 3
    for listener in listeners[:2]:
        await forget(container, listener.id, via="cli")
    await projector.run()
    assert await numbers() == before


async def test_the_follow_up_job_deletes_the_tracks_an_interrupted_erasure_left(
    container: Container, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    artist = await create_user(container, role="artist")
    principal = container.accounts.access_tokens.verify(artist.access_token)
    ticket = await container.catalog.request_upload(
        principal,
        UploadCreate(filename="a.mp3", content_type="audio/mpeg", size_bytes=1000, title="A"),
    )
    track_id = ticket.track_id
    # The accounts half only, as if the process died before the catalog half.
    assert await container.accounts.erase(artist.id, via="account")
    async with container.db.connection() as conn:
        cur = await conn.execute(
            "SELECT event_id, global_position, stream_version, occurred_at, recorded_at "
            "FROM lufy.events WHERE type = 'accounts.user_erased'"
        )
        row = await cur.fetchone()
    assert row is not None
    recorded = RecordedEvent(
        global_position=row[1],
        transaction_id=0,
        event_id=row[0],
        stream_type="user",
        stream_id=str(artist.id),
        stream_version=row[2],
        type="accounts.user_erased",
        schema_version=1,
        data=UserErased(user_id=artist.id, via="account"),
        metadata=EventMetadata(),
        occurred_at=row[3],
        recorded_at=row[4],
    )
    [spec] = ErasureFollowUp().jobs(recorded)
    assert (spec.actor, spec.queue, spec.key) == ("finish_erasure", "media-processing", str(row[0]))
    assert await delete_tracks(container, uuid.UUID(spec.payload["user_id"])) == 1
    assert await delete_tracks(container, artist.id) == 0
    cur = await admin_conn.execute(
        "SELECT deleted_at IS NOT NULL FROM lufy.tracks WHERE id = %s", [track_id]
    )
    assert await cur.fetchone() == (True,)
