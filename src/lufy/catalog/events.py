"""Catalog events: every step of a track's life, on the stream `track/{track_id}`.

Stream authorizations go to their own stream (`track_stream/{track_id}`) so that listeners
asking to play a track never contend with the artist editing it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lufy.eventstore.envelope import Event

__all__ = [
    "EVENTS",
    "StreamAuthorized",
    "TrackDeleted",
    "TrackPublished",
    "TrackTranscoded",
    "TrackUnpublished",
    "TrackUpdated",
    "TrackUploaded",
    "TranscodingFailed",
    "TranscodingStarted",
    "UploadAbandoned",
    "UploadRequested",
]

TRACK_STREAM = "track"
STREAM_AUTH_STREAM = "track_stream"


class UploadRequested(Event, frozen=True, tag="catalog.upload_requested"):
    track_id: uuid.UUID
    upload_id: uuid.UUID
    artist_id: uuid.UUID
    title: str
    filename: str
    content_type: str
    size_bytes: int
    storage_key: str
    expires_at: datetime


class TrackUploaded(Event, frozen=True, tag="catalog.track_uploaded"):
    track_id: uuid.UUID
    upload_id: uuid.UUID
    storage_key: str
    size_bytes: int
    content_type: str


class TranscodingStarted(Event, frozen=True, tag="catalog.transcoding_started"):
    track_id: uuid.UUID
    job_key: str


class TrackTranscoded(Event, frozen=True, tag="catalog.track_transcoded"):
    track_id: uuid.UUID
    duration_ms: int
    hls_prefix: str
    renditions_kbps: list[int]
    loudness_lufs: float | None = None
    encrypted: bool = False


class TranscodingFailed(Event, frozen=True, tag="catalog.transcoding_failed"):
    track_id: uuid.UUID
    reason: str


class TrackPublished(Event, frozen=True, tag="catalog.track_published"):
    track_id: uuid.UUID


class TrackUnpublished(Event, frozen=True, tag="catalog.track_unpublished"):
    track_id: uuid.UUID


class TrackUpdated(Event, frozen=True, tag="catalog.track_updated"):
    track_id: uuid.UUID
    title: str


class TrackDeleted(Event, frozen=True, tag="catalog.track_deleted"):
    track_id: uuid.UUID


class StreamAuthorized(Event, frozen=True, tag="catalog.stream_authorized"):
    track_id: uuid.UUID
    expires_at: datetime
    delivery: str  # "local" | "cloudfront"
    # Grants before privacy sealing named the signed-in listener here; `lufy migrate` replaces
    # it with `listener_key`, and new grants never set it.
    listener_id: uuid.UUID | None = None
    # The grant's id: the stream token's `jti`, sent back by the player with its playback events.
    grant_id: uuid.UUID | None = None
    # The signed-in listener's keyed hash (analytics' `listener_key`); None for an anonymous one.
    listener_key: str | None = None


class UploadAbandoned(Event, frozen=True, tag="catalog.upload_abandoned"):
    """An upload never completed in time (the sweep, after 24 h): the track is failed with
    `reason`, and its source at `storage_key` is deleted by the job this event implies."""

    track_id: uuid.UUID
    upload_id: uuid.UUID
    storage_key: str
    reason: str


EVENTS = (
    UploadRequested,
    TrackUploaded,
    TranscodingStarted,
    TrackTranscoded,
    TranscodingFailed,
    TrackPublished,
    TrackUnpublished,
    TrackUpdated,
    TrackDeleted,
    StreamAuthorized,
    UploadAbandoned,
)
