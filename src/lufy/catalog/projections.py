"""The tracks read model: an inline projection, updated in the transaction of the append, so a
caller reads its own change back at once (a track's status right after `complete`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from psycopg import AsyncConnection

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
from lufy.eventstore.envelope import RecordedEvent
from lufy.projections.base import Projection
from lufy.sqlfiles import load_queries

__all__ = ["PROJECTIONS", "TracksProjection"]

_Q = load_queries("lufy.catalog")


class TracksProjection(Projection):
    name: ClassVar[str] = "catalog_tracks"
    version: ClassVar[int] = 1
    inline: ClassVar[bool] = True
    tables: ClassVar[tuple[str, ...]] = ("tracks",)
    handles: ClassVar[frozenset[str]] = frozenset(
        {
            "catalog.upload_requested",
            "catalog.track_uploaded",
            "catalog.transcoding_started",
            "catalog.track_transcoded",
            "catalog.transcoding_failed",
            "catalog.track_published",
            "catalog.track_unpublished",
            "catalog.track_updated",
            "catalog.track_deleted",
            "catalog.upload_abandoned",
        }
    )

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        for recorded in events:
            await self._apply_one(conn, recorded)

    async def _apply_one(self, conn: AsyncConnection[Any], recorded: RecordedEvent) -> None:
        e = recorded.data
        base = {"at": recorded.occurred_at, "version": recorded.stream_version}
        match e:
            case UploadRequested():
                await conn.execute(
                    _Q.insert_track,
                    {
                        **base,
                        "id": e.track_id,
                        "artist_id": e.artist_id,
                        "title": e.title,
                        "upload_id": e.upload_id,
                        "upload_key": e.storage_key,
                        "filename": e.filename,
                        "content_type": e.content_type,
                        "size_bytes": e.size_bytes,
                        "expires_at": e.expires_at,
                    },
                )
            case TrackUploaded():
                await conn.execute(
                    _Q.set_status,
                    {**base, "id": e.track_id, "status": "processing", "failure_reason": None},
                )
            case TranscodingStarted():
                await conn.execute(_Q.touch, {**base, "id": e.track_id})
            case TrackTranscoded():
                await conn.execute(
                    _Q.set_transcoded,
                    {
                        **base,
                        "id": e.track_id,
                        "duration_ms": e.duration_ms,
                        "loudness_lufs": e.loudness_lufs,
                        "hls_prefix": e.hls_prefix,
                        "encrypted": e.encrypted,
                    },
                )
            case TranscodingFailed():
                await conn.execute(
                    _Q.set_status,
                    {**base, "id": e.track_id, "status": "failed", "failure_reason": e.reason},
                )
            case TrackPublished() | TrackUnpublished():
                published = isinstance(e, TrackPublished)
                await conn.execute(
                    _Q.set_published, {**base, "id": e.track_id, "published": published}
                )
            case TrackUpdated():
                await conn.execute(_Q.set_title, {**base, "id": e.track_id, "title": e.title})
            case TrackDeleted():
                await conn.execute(_Q.set_deleted, {**base, "id": e.track_id})
            case UploadAbandoned():
                await conn.execute(
                    _Q.set_abandoned, {**base, "id": e.track_id, "failure_reason": e.reason}
                )


TRACKS = TracksProjection()
PROJECTIONS: list[Projection] = [TRACKS]
