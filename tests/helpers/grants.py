"""Tracks that can be streamed and stream grants, for the grant's tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from lufy.bootstrap import Container
from lufy.catalog.events import StreamAuthorized
from lufy.catalog.schemas import UploadCreate
from lufy.eventstore import NewEvent
from lufy.identity import Principal


async def ready_track(container: Container, admin_conn: Any, *, status: str = "ready") -> uuid.UUID:
    """A published track of a new artist, its status set by hand (no transcoding)."""
    artist = Principal(user_id=uuid.uuid4(), role="artist", session_id=uuid.uuid4())
    ticket = await container.catalog.request_upload(
        artist,
        UploadCreate(filename="t.mp3", content_type="audio/mpeg", size_bytes=10, title="t"),
    )
    await admin_conn.execute(
        "UPDATE lufy.tracks SET status = %s, published = true WHERE id = %s",
        [status, ticket.track_id],
    )
    return ticket.track_id


def grant_event(track_id: uuid.UUID) -> NewEvent:
    """A `catalog.stream_authorized` event for `track_id`, occurring now."""
    now = datetime.now(UTC)
    event = StreamAuthorized(
        track_id=track_id,
        listener_key=None,
        expires_at=now + timedelta(hours=1),
        delivery="local",
        grant_id=uuid.uuid4(),
    )
    return NewEvent(event=event, occurred_at=now)
