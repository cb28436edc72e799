"""What callers ask the catalog to do (decoded requests, already authenticated)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

__all__ = [
    "AbandonUpload",
    "CompleteUpload",
    "DeleteTrack",
    "FailTranscoding",
    "FinishTranscoding",
    "PublishTrack",
    "RequestUpload",
    "StartTranscoding",
    "UnpublishTrack",
    "UpdateTrack",
]


class AbandonUpload(msgspec.Struct, frozen=True, kw_only=True):
    """The sweep gives up on an upload that was never completed."""

    reason: str


class RequestUpload(msgspec.Struct, frozen=True, kw_only=True):
    track_id: uuid.UUID
    upload_id: uuid.UUID
    artist_id: uuid.UUID
    title: str
    filename: str
    content_type: str
    size_bytes: int
    storage_key: str
    expires_at: datetime


class CompleteUpload(msgspec.Struct, frozen=True, kw_only=True):
    actor_id: uuid.UUID
    admin: bool = False
    upload_id: uuid.UUID
    # What storage holds at the key (None: nothing was uploaded).
    stored_size: int | None
    stored_content_type: str | None


class StartTranscoding(msgspec.Struct, frozen=True, kw_only=True):
    job_key: str


class FinishTranscoding(msgspec.Struct, frozen=True, kw_only=True):
    duration_ms: int
    loudness_lufs: float | None
    hls_prefix: str
    renditions_kbps: list[int]
    encrypted: bool


class FailTranscoding(msgspec.Struct, frozen=True, kw_only=True):
    reason: str


class UpdateTrack(msgspec.Struct, frozen=True, kw_only=True):
    actor_id: uuid.UUID
    admin: bool = False
    title: str | None = None


class PublishTrack(msgspec.Struct, frozen=True, kw_only=True):
    actor_id: uuid.UUID
    admin: bool = False


class UnpublishTrack(msgspec.Struct, frozen=True, kw_only=True):
    actor_id: uuid.UUID
    admin: bool = False


class DeleteTrack(msgspec.Struct, frozen=True, kw_only=True):
    actor_id: uuid.UUID
    admin: bool = False
