"""The track aggregate, pure: `evolve(state, event)` and one `decide_*` per command.

No I/O here: the service loads the events, calls a decision, and appends what it returns.
Errors are LufyError subclasses, so a refused command maps to a clear 4xx.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import msgspec

from lufy.catalog.commands import (
    AbandonUpload,
    CompleteUpload,
    DeleteTrack,
    FailTranscoding,
    FinishTranscoding,
    PublishTrack,
    RequestUpload,
    StartTranscoding,
    UnpublishTrack,
    UpdateTrack,
)
from lufy.catalog.events import (
    TrackDeleted,
    TrackPublished,
    TrackTranscoded,
    TrackUnpublished,
    TrackUpdated,
    TrackUploaded,
    TranscodingFailed,
    TranscodingStarted,
    UploadAbandoned,
    UploadRequested,
)
from lufy.errors import ConflictError, NotFoundError, ValidationFailedError
from lufy.eventstore.envelope import Event

__all__ = [
    "TrackState",
    "decide_abandon_upload",
    "decide_complete_upload",
    "decide_delete",
    "decide_fail",
    "decide_finish",
    "decide_publish",
    "decide_request_upload",
    "decide_start",
    "decide_unpublish",
    "decide_update",
    "evolve",
    "fold",
]

UPLOADING, PROCESSING, READY, FAILED = "uploading", "processing", "ready", "failed"


class TrackState(msgspec.Struct, frozen=True, kw_only=True):
    exists: bool = False
    track_id: uuid.UUID | None = None
    artist_id: uuid.UUID | None = None
    upload_id: uuid.UUID | None = None
    title: str = ""
    status: str = UPLOADING
    published: bool = False
    deleted: bool = False
    storage_key: str = ""
    content_type: str = ""
    size_bytes: int = 0
    upload_expires_at: datetime | None = None
    hls_prefix: str | None = None
    started_jobs: frozenset[str] = frozenset()
    # The source was deleted because the upload was abandoned.
    source_deleted: bool = False


def evolve(state: TrackState, event: Event) -> TrackState:
    r = msgspec.structs.replace
    match event:
        case UploadRequested():
            return TrackState(
                exists=True,
                track_id=event.track_id,
                artist_id=event.artist_id,
                upload_id=event.upload_id,
                title=event.title,
                storage_key=event.storage_key,
                content_type=event.content_type,
                size_bytes=event.size_bytes,
                upload_expires_at=event.expires_at,
            )
        case TrackUploaded():
            return r(state, status=PROCESSING, size_bytes=event.size_bytes)
        case TranscodingStarted():
            return r(state, started_jobs=state.started_jobs | {event.job_key})
        case TrackTranscoded():
            return r(state, status=READY, hls_prefix=event.hls_prefix)
        case TranscodingFailed():
            return r(state, status=FAILED)
        case UploadAbandoned():
            return r(state, status=FAILED, source_deleted=True)
        case TrackPublished():
            return r(state, published=True)
        case TrackUnpublished():
            return r(state, published=False)
        case TrackUpdated():
            return r(state, title=event.title)
        case TrackDeleted():
            return r(state, deleted=True, published=False)
    return state


def fold(events: Iterable[Event], state: TrackState | None = None) -> TrackState:
    state = state or TrackState()
    for event in events:
        state = evolve(state, event)
    return state


def _visible(state: TrackState) -> None:
    if not state.exists or state.deleted:
        raise NotFoundError("no such track")


def _owned(state: TrackState, actor_id: uuid.UUID, admin: bool) -> None:
    _visible(state)
    if state.artist_id != actor_id and not admin:
        # Another artist's track is not even acknowledged to exist.
        raise NotFoundError("no such track")


def decide_request_upload(state: TrackState, cmd: RequestUpload) -> list[Event]:
    if state.exists:
        raise ConflictError("this track already exists")
    return [
        UploadRequested(
            track_id=cmd.track_id,
            upload_id=cmd.upload_id,
            artist_id=cmd.artist_id,
            title=cmd.title,
            filename=cmd.filename,
            content_type=cmd.content_type,
            size_bytes=cmd.size_bytes,
            storage_key=cmd.storage_key,
            expires_at=cmd.expires_at,
        )
    ]


def decide_complete_upload(state: TrackState, cmd: CompleteUpload) -> list[Event]:
    _visible(state)
    if state.upload_id != cmd.upload_id or (state.artist_id != cmd.actor_id and not cmd.admin):
        raise NotFoundError("no such upload")
    if state.status != UPLOADING:
        # Completing twice is harmless: the first call already started processing.
        return []
    if cmd.stored_size is None:
        raise ConflictError("the file has not been uploaded yet: send it to the upload URL first")
    if cmd.stored_size != state.size_bytes:
        raise ValidationFailedError(
            f"the uploaded file has {cmd.stored_size} bytes but {state.size_bytes} were declared"
        )
    if cmd.stored_content_type and cmd.stored_content_type != state.content_type:
        raise ValidationFailedError(
            f"the uploaded file was sent as {cmd.stored_content_type!r} "
            f"but {state.content_type!r} was declared"
        )
    assert state.track_id is not None
    assert state.upload_id is not None
    return [
        TrackUploaded(
            track_id=state.track_id,
            upload_id=state.upload_id,
            storage_key=state.storage_key,
            size_bytes=cmd.stored_size,
            content_type=state.content_type,
        )
    ]


def decide_abandon_upload(state: TrackState, cmd: AbandonUpload) -> list[Event]:
    """Only an upload still waiting for its file is abandoned: one completed meanwhile (or
    deleted) is left alone."""
    if not state.exists or state.deleted or state.status != UPLOADING:
        return []
    assert state.track_id is not None
    assert state.upload_id is not None
    return [
        UploadAbandoned(
            track_id=state.track_id,
            upload_id=state.upload_id,
            storage_key=state.storage_key,
            reason=cmd.reason,
        )
    ]


def _processing(state: TrackState) -> bool:
    return state.exists and not state.deleted and state.status == PROCESSING


def decide_start(state: TrackState, cmd: StartTranscoding) -> list[Event]:
    if not _processing(state) or cmd.job_key in state.started_jobs:
        return []
    assert state.track_id is not None
    return [TranscodingStarted(track_id=state.track_id, job_key=cmd.job_key)]


def decide_finish(state: TrackState, cmd: FinishTranscoding) -> list[Event]:
    if not _processing(state):
        return []
    assert state.track_id is not None
    return [
        TrackTranscoded(
            track_id=state.track_id,
            duration_ms=cmd.duration_ms,
            loudness_lufs=cmd.loudness_lufs,
            hls_prefix=cmd.hls_prefix,
            renditions_kbps=list(cmd.renditions_kbps),
            encrypted=cmd.encrypted,
        )
    ]


def decide_fail(state: TrackState, cmd: FailTranscoding) -> list[Event]:
    if not _processing(state):
        return []
    assert state.track_id is not None
    return [TranscodingFailed(track_id=state.track_id, reason=cmd.reason)]


def decide_update(state: TrackState, cmd: UpdateTrack) -> list[Event]:
    _owned(state, cmd.actor_id, cmd.admin)
    if cmd.title is None or cmd.title == state.title:
        return []
    assert state.track_id is not None
    return [TrackUpdated(track_id=state.track_id, title=cmd.title)]


def decide_publish(state: TrackState, cmd: PublishTrack) -> list[Event]:
    _owned(state, cmd.actor_id, cmd.admin)
    if state.status != READY:
        raise ConflictError(f"only a ready track can be published; this one is {state.status}")
    if state.published:
        return []
    assert state.track_id is not None
    return [TrackPublished(track_id=state.track_id)]


def decide_unpublish(state: TrackState, cmd: UnpublishTrack) -> list[Event]:
    _owned(state, cmd.actor_id, cmd.admin)
    if not state.published:
        return []
    assert state.track_id is not None
    return [TrackUnpublished(track_id=state.track_id)]


def decide_delete(state: TrackState, cmd: DeleteTrack) -> list[Event]:
    _owned(state, cmd.actor_id, cmd.admin)
    assert state.track_id is not None
    return [TrackDeleted(track_id=state.track_id)]
