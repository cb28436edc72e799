"""API shapes of `/api/music` (CONTRACT.md §3). Events are never returned from the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from lufy.media.transcode import ACCEPTED_TYPES
from lufy.media.uploads import MAX_UPLOAD_BYTES

__all__ = [
    "ALLOWED_TYPES",
    "MAX_UPLOAD_BYTES",
    "StreamGrant",
    "Track",
    "TrackList",
    "TrackUpdate",
    "UploadAccepted",
    "UploadCreate",
    "UploadTicket",
]


# Declared content type -> the file extensions it may carry (media reads each with one demuxer).
ALLOWED_TYPES: dict[str, tuple[str, ...]] = ACCEPTED_TYPES

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class UploadCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    content_type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    size_bytes: int
    title: Title


class UploadTicket(msgspec.Struct, frozen=True, kw_only=True):
    upload_id: uuid.UUID
    track_id: uuid.UUID
    method: Literal["PUT", "POST"]
    url: str
    headers: dict[str, str]
    expires_at: datetime


class UploadAccepted(msgspec.Struct, frozen=True, kw_only=True):
    track_id: uuid.UUID
    status: str


class Track(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    artist_id: uuid.UUID
    title: str
    status: Literal["uploading", "processing", "ready", "failed"]
    failure_reason: str | None
    duration_ms: int | None
    published: bool
    created_at: datetime


class TrackList(msgspec.Struct, frozen=True, kw_only=True):
    tracks: list[Track]


class TrackUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None


class StreamGrant(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    token: str
    expires_at: datetime
    # The token's `jti`: the player sends it back with its playback events.
    grant_id: uuid.UUID
