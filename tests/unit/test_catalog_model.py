"""The track aggregate: given events, when a command, then events (or a refusal)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from lufy.catalog import model
from lufy.catalog.commands import (
    CompleteUpload,
    DeleteTrack,
    FailTranscoding,
    FinishTranscoding,
    PublishTrack,
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
    UploadRequested,
)
from lufy.errors import ConflictError, NotFoundError, ValidationFailedError

ARTIST = uuid.uuid4()
STRANGER = uuid.uuid4()
TRACK = uuid.uuid4()
UPLOAD = uuid.uuid4()

REQUESTED = UploadRequested(
    track_id=TRACK,
    upload_id=UPLOAD,
    artist_id=ARTIST,
    title="Song",
    filename="song.mp3",
    content_type="audio/mpeg",
    size_bytes=1000,
    storage_key=f"uploads/{TRACK}/source.mp3",
    expires_at=datetime(2030, 1, 1, tzinfo=UTC),
)
UPLOADED = TrackUploaded(
    track_id=TRACK,
    upload_id=UPLOAD,
    storage_key=REQUESTED.storage_key,
    size_bytes=1000,
    content_type="audio/mpeg",
)
TRANSCODED = TrackTranscoded(
    track_id=TRACK, duration_ms=20_000, hls_prefix=f"hls/{TRACK}/", renditions_kbps=[64, 128, 256]
)
RESULT = FinishTranscoding(
    duration_ms=20_000,
    loudness_lufs=-14.0,
    hls_prefix=f"hls/{TRACK}/",
    renditions_kbps=[64, 128, 256],
    encrypted=True,
)


def given(*events: object) -> model.TrackState:
    return model.fold(events)  # type: ignore[arg-type]


def complete(size: int | None = 1000, ctype: str | None = "audio/mpeg", actor=ARTIST):  # type: ignore[no-untyped-def]
    return CompleteUpload(
        actor_id=actor, upload_id=UPLOAD, stored_size=size, stored_content_type=ctype
    )


def test_completing_an_upload_that_arrived_records_track_uploaded() -> None:
    events = model.decide_complete_upload(given(REQUESTED), complete())
    assert events == [UPLOADED]


def test_completing_before_the_file_arrived_is_a_conflict() -> None:
    with pytest.raises(ConflictError, match="not been uploaded"):
        model.decide_complete_upload(given(REQUESTED), complete(size=None))


def test_a_stored_file_of_another_size_or_type_is_refused() -> None:
    with pytest.raises(ValidationFailedError, match="10 bytes"):
        model.decide_complete_upload(given(REQUESTED), complete(size=10))
    with pytest.raises(ValidationFailedError, match="audio/wav"):
        model.decide_complete_upload(given(REQUESTED), complete(ctype="audio/wav"))


def test_another_artist_cannot_complete_the_upload() -> None:
    with pytest.raises(NotFoundError):
        model.decide_complete_upload(given(REQUESTED), complete(actor=STRANGER))


def test_completing_twice_records_nothing_the_second_time() -> None:
    assert model.decide_complete_upload(given(REQUESTED, UPLOADED), complete()) == []


def test_transcoding_starts_once_per_job_key() -> None:
    state = given(REQUESTED, UPLOADED)
    assert model.decide_start(state, StartTranscoding(job_key="k")) == [
        TranscodingStarted(track_id=TRACK, job_key="k")
    ]
    state = given(REQUESTED, UPLOADED, TranscodingStarted(track_id=TRACK, job_key="k"))
    assert model.decide_start(state, StartTranscoding(job_key="k")) == []


def test_a_finished_transcode_makes_the_track_ready_once() -> None:
    state = given(REQUESTED, UPLOADED)
    [event] = model.decide_finish(state, RESULT)
    assert isinstance(event, TrackTranscoded)
    assert event.loudness_lufs == -14.0
    assert model.fold([event], state).status == "ready"
    assert model.decide_finish(model.fold([event], state), RESULT) == []
    assert model.decide_fail(model.fold([event], state), FailTranscoding(reason="x")) == []


def test_a_failure_is_recorded_with_its_reason_and_only_while_processing() -> None:
    state = given(REQUESTED, UPLOADED)
    assert model.decide_fail(state, FailTranscoding(reason="not an audio file")) == [
        TranscodingFailed(track_id=TRACK, reason="not an audio file")
    ]
    assert model.decide_fail(given(REQUESTED), FailTranscoding(reason="x")) == []


def test_only_a_ready_track_can_be_published() -> None:
    for state in (
        given(REQUESTED),
        given(REQUESTED, UPLOADED),
        given(REQUESTED, UPLOADED, TranscodingFailed(track_id=TRACK, reason="r")),
    ):
        with pytest.raises(ConflictError, match="only a ready track"):
            model.decide_publish(state, PublishTrack(actor_id=ARTIST))
    ready = given(REQUESTED, UPLOADED, TRANSCODED)
    assert model.decide_publish(ready, PublishTrack(actor_id=ARTIST)) == [
        TrackPublished(track_id=TRACK)
    ]
    published = given(REQUESTED, UPLOADED, TRANSCODED, TrackPublished(track_id=TRACK))
    assert model.decide_publish(published, PublishTrack(actor_id=ARTIST)) == []
    assert model.decide_unpublish(published, UnpublishTrack(actor_id=ARTIST)) == [
        TrackUnpublished(track_id=TRACK)
    ]


def test_strangers_cannot_touch_a_track_but_an_admin_can() -> None:
    ready = given(REQUESTED, UPLOADED, TRANSCODED)
    with pytest.raises(NotFoundError):
        model.decide_publish(ready, PublishTrack(actor_id=STRANGER))
    with pytest.raises(NotFoundError):
        model.decide_delete(ready, DeleteTrack(actor_id=STRANGER))
    assert model.decide_publish(ready, PublishTrack(actor_id=STRANGER, admin=True)) == [
        TrackPublished(track_id=TRACK)
    ]


def test_a_rename_records_the_new_title_and_an_unchanged_one_records_nothing() -> None:
    state = given(REQUESTED)
    assert model.decide_update(state, UpdateTrack(actor_id=ARTIST, title="New")) == [
        TrackUpdated(track_id=TRACK, title="New")
    ]
    assert model.decide_update(state, UpdateTrack(actor_id=ARTIST, title="Song")) == []


def test_a_deleted_track_is_gone_for_every_command_and_for_processing() -> None:
    state = given(REQUESTED, UPLOADED, TrackDeleted(track_id=TRACK))
    with pytest.raises(NotFoundError):
        model.decide_delete(state, DeleteTrack(actor_id=ARTIST))
    with pytest.raises(NotFoundError):
        model.decide_publish(state, PublishTrack(actor_id=ARTIST))
    assert model.decide_start(state, StartTranscoding(job_key="k")) == []
    assert model.decide_finish(state, RESULT) == []
