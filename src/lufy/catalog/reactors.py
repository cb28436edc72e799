"""Catalog reactors: an uploaded track implies one `process_upload` job; an abandoned upload
one `delete_upload_source` job."""

from __future__ import annotations

from typing import ClassVar

from lufy.catalog.events import TrackUploaded, UploadAbandoned
from lufy.eventstore.envelope import RecordedEvent
from lufy.jobs import JobSpec
from lufy.projections.reactors import Reactor

__all__ = ["REACTORS", "MediaProcessingReactor", "UploadCleanupReactor"]


class MediaProcessingReactor(Reactor):
    name: ClassVar[str] = "catalog_media_processing"
    handles: ClassVar[frozenset[str]] = frozenset({"catalog.track_uploaded"})

    def jobs(self, event: RecordedEvent) -> list[JobSpec]:
        data = event.data
        if not isinstance(data, TrackUploaded):
            return []
        return [
            JobSpec(
                actor="process_upload",
                queue="media-processing",
                payload={"track_id": str(data.track_id)},
                key=str(event.event_id),
            )
        ]


class UploadCleanupReactor(Reactor):
    name: ClassVar[str] = "catalog_upload_cleanup"
    handles: ClassVar[frozenset[str]] = frozenset({"catalog.upload_abandoned"})

    def jobs(self, event: RecordedEvent) -> list[JobSpec]:
        data = event.data
        if not isinstance(data, UploadAbandoned):
            return []
        return [
            JobSpec(
                actor="delete_upload_source",
                queue="media-processing",
                payload={"track_id": str(data.track_id), "storage_key": data.storage_key},
                key=str(event.event_id),
            )
        ]


REACTORS = [MediaProcessingReactor(), UploadCleanupReactor()]
