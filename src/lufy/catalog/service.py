"""The catalog's application service: load a track, decide, append (with the inline read model).

Every write runs in one transaction carrying the caller's identity for Row-Level Security, so
the tracks read model is written under the same rules it is read with.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from psycopg import AsyncConnection

from lufy.catalog import model
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
from lufy.catalog.events import STREAM_AUTH_STREAM, TRACK_STREAM, StreamAuthorized
from lufy.catalog.grants import GrantConnections, record_grant
from lufy.catalog.projections import TRACKS
from lufy.catalog.schemas import (
    ALLOWED_TYPES,
    MAX_UPLOAD_BYTES,
    StreamGrant,
    Track,
    TrackUpdate,
    UploadAccepted,
    UploadCreate,
    UploadTicket,
)
from lufy.db import Database
from lufy.errors import (
    ConcurrencyError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationFailedError,
)
from lufy.eventstore import NO_STREAM, EventMetadata, EventStore, NewEvent
from lufy.eventstore.envelope import Event
from lufy.identity import Principal, event_metadata
from lufy.media import delivery, signing
from lufy.media.storage import BlobStorage
from lufy.media.uploads import UnsupportedMediaTypeError
from lufy.privacy.listeners import ListenerHasher
from lufy.projections.inline import append_inline
from lufy.settings import Settings
from lufy.sqlfiles import load_queries

__all__ = [
    "CatalogService",
    "TierResolver",
    "UnsupportedMediaTypeError",
    "everyone_premium",
    "normalize_content_type",
]

_Q = load_queries("lufy.catalog")
UPLOAD_TTL = timedelta(hours=1)
# An upload not completed this long after it was requested is abandoned and its source deleted.
ABANDON_AFTER = timedelta(hours=24)
ABANDONED_REASON = (
    "the upload was not completed within 24 hours, so its file was deleted; upload the file again"
)
# Advisory lock namespace of per-artist upload requests ("CU").
_NS_UPLOADS = 0x4355
# What the 429 for too many uploads in flight asks to wait when only processing ones remain.
_PROCESSING_RETRY_S = 60


def _abandon_event_id(track_id: uuid.UUID) -> Callable[[int], uuid.UUID]:
    # Deterministic: a second sweep (or a retried one) appends nothing new.
    return lambda i: uuid.uuid5(uuid.NAMESPACE_URL, f"lufy:abandon_upload:{track_id}:{i}")


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


# Which tier a listener's stream tokens carry (None: an anonymous listener), read in the
# grant's own transaction at the grant's time. Injected: the default gives everyone premium
# (no payments configured: everything plays as it always did); with Stripe configured,
# bootstrap passes the payments context's entitlements.
TierResolver = Callable[[AsyncConnection[Any], uuid.UUID | None, datetime], Awaitable[signing.Tier]]


async def everyone_premium(
    conn: AsyncConnection[Any], listener_id: uuid.UUID | None, now: datetime
) -> signing.Tier:
    return "premium"


def normalize_content_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _track(row: Sequence[Any]) -> Track:
    return Track(
        id=row[0],
        artist_id=row[1],
        title=row[2],
        status=row[3],
        failure_reason=row[4],
        duration_ms=row[5],
        published=row[6],
        created_at=row[7],
    )


def _metadata(actor: uuid.UUID | None, causation_id: str | None = None) -> EventMetadata:
    return EventMetadata(**event_metadata(actor, causation_id=causation_id))


class CatalogService:
    def __init__(
        self,
        *,
        db: Database,
        store: EventStore,
        storage: BlobStorage,
        settings: Settings,
        encrypt_hls: bool = True,
        clock: Callable[[], datetime] | None = None,
        tier_resolver: TierResolver | None = None,
        grants: GrantConnections | None = None,
    ) -> None:
        self.db = db
        self.grants = grants
        self.store = store
        self.storage = storage
        self.settings = settings
        self.encrypt_hls = encrypt_hls
        self.clock = clock or (lambda: datetime.now(UTC))
        self.tier_resolver = tier_resolver or everyone_premium
        self.listener_hasher = ListenerHasher()

    # --- loading and appending ----------------------------------------------------------------

    async def _load(
        self, conn: AsyncConnection[Any], track_id: uuid.UUID
    ) -> tuple[model.TrackState, int]:
        events = await self.store.read_stream(conn, TRACK_STREAM, str(track_id))
        state = model.fold(e.data for e in events)
        version = events[-1].stream_version or 0 if events else 0
        return state, version

    async def _append(
        self,
        conn: AsyncConnection[Any],
        track_id: uuid.UUID,
        events: Sequence[Event | NewEvent],
        version: int,
        actor: uuid.UUID | None,
    ) -> None:
        if not events:
            return
        items = [
            e if isinstance(e, NewEvent) else NewEvent(event=e, metadata=_metadata(actor))
            for e in events
        ]
        await append_inline(
            self.store,
            conn,
            TRACK_STREAM,
            str(track_id),
            items,
            expected=version if version else NO_STREAM,
            projections=[TRACKS],
        )

    # --- upload -------------------------------------------------------------------------------

    async def request_upload(self, principal: Principal, body: UploadCreate) -> UploadTicket:
        if principal.role != "artist":
            raise PermissionDeniedError("only artists can upload music")
        content_type = normalize_content_type(body.content_type)
        extension = PurePosixPath(body.filename).suffix.lower()
        if body.size_bytes <= 0:
            raise ValidationFailedError("size_bytes: the file is empty (0 bytes)")
        if body.size_bytes > MAX_UPLOAD_BYTES:
            raise PayloadTooLargeError(
                f"size_bytes: {body.size_bytes} bytes is over the limit of "
                f"{MAX_UPLOAD_BYTES} bytes (200 MB)"
            )
        allowed = ALLOWED_TYPES.get(content_type)
        if allowed is None:
            raise UnsupportedMediaTypeError(
                f"content_type: {content_type!r} is not accepted; upload mp3, wav, flac, "
                "aac/m4a or ogg audio"
            )
        if extension not in allowed:
            raise ValidationFailedError(
                f"filename: a {content_type} file should end in {' or '.join(allowed)}, "
                f"not {extension or 'no extension'!r}"
            )
        title = body.title.strip()
        if not title:
            raise ValidationFailedError("title: must not be blank")
        now = self.clock()
        track_id, upload_id = uuid.uuid4(), uuid.uuid4()
        key = f"uploads/{track_id}/source{extension}"
        expires_at = (now + UPLOAD_TTL).replace(microsecond=0)
        target = self.storage.upload_target(
            key,
            content_type=content_type,
            size_bytes=body.size_bytes,
            expires_in=int(UPLOAD_TTL.total_seconds()),
        )
        if target is not None:
            method, url, headers, expires_at = (
                target.method,
                target.url,
                target.headers,
                target.expires_at.replace(microsecond=0),
            )
        else:
            token = signing.issue_upload_token(
                self.settings.jwt_secret,
                artist_id=principal.user_id,
                upload_id=upload_id,
                key=key,
                content_type=content_type,
                size_bytes=body.size_bytes,
                expires_at=expires_at,
            )
            method = "PUT"
            url = f"{self.settings.APP_URL}/media/uploads/{upload_id}?token={token}"
            headers = {"Content-Type": content_type}
        command = RequestUpload(
            track_id=track_id,
            upload_id=upload_id,
            artist_id=principal.user_id,
            title=title,
            filename=PurePosixPath(body.filename).name,
            content_type=content_type,
            size_bytes=body.size_bytes,
            storage_key=key,
            expires_at=expires_at,
        )
        async with self.db.transaction(user_id=principal.user_id, role=principal.role) as conn:
            await self._check_upload_quota(conn, principal.user_id, body.size_bytes, now)
            events = model.decide_request_upload(model.TrackState(), command)
            await self._append(conn, track_id, events, 0, principal.user_id)
        return UploadTicket(
            upload_id=upload_id,
            track_id=track_id,
            method="PUT" if method == "PUT" else "POST",
            url=url,
            headers=headers,
            expires_at=expires_at,
        )

    async def _check_upload_quota(
        self, conn: AsyncConnection[Any], artist_id: uuid.UUID, size_bytes: int, now: datetime
    ) -> None:
        """Per-artist limits: UPLOAD_MAX_IN_FLIGHT unfinished uploads (429) and
        UPLOAD_MAX_STORED_BYTES of sources kept (413). Held under a per-artist lock until the
        transaction ends, so concurrent requests cannot both take the last place."""
        await conn.execute(_Q.lock_artist_uploads, {"ns": _NS_UPLOADS, "artist_id": artist_id})
        cur = await conn.execute(_Q.upload_usage, {"artist_id": artist_id, "now": now})
        row = await cur.fetchone()
        in_flight, stored, next_expiry = (row[0], row[1], row[2]) if row else (0, 0, None)
        max_in_flight = self.settings.UPLOAD_MAX_IN_FLIGHT
        if in_flight >= max_in_flight:
            wait = (
                int((next_expiry - now).total_seconds()) + 1
                if next_expiry is not None
                else _PROCESSING_RETRY_S
            )
            raise RateLimitedError(
                f"uploads in flight: you have {in_flight} unfinished uploads and the limit is "
                f"{max_in_flight}; complete them (or wait until they finish processing) before "
                "starting another",
                retry_after=max(1, wait),
                extra={"limit": max_in_flight, "in_flight": in_flight},
            )
        max_stored = self.settings.upload_max_stored_bytes
        if stored + size_bytes > max_stored:
            raise PayloadTooLargeError(
                f"size_bytes: your tracks' files take {stored} bytes ({_gib(stored)}) and this "
                f"upload of {size_bytes} bytes would pass your storage limit of {max_stored} "
                f"bytes ({_gib(max_stored)}); delete tracks you no longer need to make room"
            )

    async def abandon_stale_uploads(
        self, *, now: datetime | None = None, job_key: str = "sweep", limit: int = 500
    ) -> int:
        """Abandon uploads requested more than ABANDON_AFTER ago and never completed: each gets
        `catalog.upload_abandoned` (the track fails, and the event's job deletes the source).
        Returns how many were abandoned; idempotent (event ids derive from the track)."""
        before = (now or self.clock()) - ABANDON_AFTER
        async with self.db.transaction(role="system") as conn:
            cur = await conn.execute(_Q.stale_uploads, {"before": before, "limit": limit})
            stale = [r[0] for r in await cur.fetchall()]
        abandoned = 0
        command = AbandonUpload(reason=ABANDONED_REASON)
        for track_id in stale:
            try:
                state = await self._system_decide(
                    track_id,
                    lambda s: model.decide_abandon_upload(s, command),
                    _abandon_event_id(track_id),
                    job_key,
                )
            except ConcurrencyError:
                continue  # completed or deleted at this very moment: the next sweep decides
            abandoned += state.source_deleted
        return abandoned

    def delete_source(self, storage_key: str) -> None:
        """Delete an abandoned upload's source (idempotent: a missing key is fine)."""
        if storage_key:
            self.storage.delete(storage_key)

    async def ensure_upload_open(self, upload_id: uuid.UUID) -> None:
        """The local upload target accepts bytes only while the track waits for them: once
        completed, the source being processed can no longer be swapped."""
        async with self.db.transaction(role="system") as conn:
            cur = await conn.execute(_Q.upload_status, {"upload_id": upload_id})
            row = await cur.fetchone()
        if row is None or row[1]:
            raise NotFoundError("no such upload")
        if row[0] != model.UPLOADING:
            raise ConflictError(
                "this upload was already completed (or abandoned after 24 hours); "
                "start a new upload"
            )

    async def complete_upload(self, principal: Principal, upload_id: uuid.UUID) -> UploadAccepted:
        async with self.db.transaction(user_id=principal.user_id, role=principal.role) as conn:
            cur = await conn.execute(_Q.find_upload, {"upload_id": upload_id})
            row = await cur.fetchone()
            if row is None:
                raise NotFoundError("no such upload")
            track_id: uuid.UUID = row[0]
            state, version = await self._load(conn, track_id)
            info = None
            if state.status == model.UPLOADING and state.storage_key:
                info = await asyncio.to_thread(self.storage.stat, state.storage_key)
            command = CompleteUpload(
                actor_id=principal.user_id,
                admin=principal.is_admin,
                upload_id=upload_id,
                stored_size=info.size if info else None,
                stored_content_type=(
                    normalize_content_type(info.content_type)
                    if info and info.content_type
                    else None
                ),
            )
            events = model.decide_complete_upload(state, command)
            await self._append(conn, track_id, events, version, principal.user_id)
            status = model.PROCESSING if events else state.status
        return UploadAccepted(track_id=track_id, status=status)

    # --- processing (called by the media-processing job, as role `system`) ---------------------

    async def processing_state(self, track_id: uuid.UUID) -> model.TrackState:
        async with self.db.transaction(role="system") as conn:
            state, _ = await self._load(conn, track_id)
        return state

    async def _system_decide(
        self,
        track_id: uuid.UUID,
        decide: Callable[[model.TrackState], list[Event]],
        event_id: Callable[[int], uuid.UUID],
        causation_id: str,
    ) -> model.TrackState:
        async with self.db.transaction(role="system") as conn:
            state, version = await self._load(conn, track_id)
            events = decide(state)
            items = [
                NewEvent(
                    event=e,
                    event_id=event_id(i),
                    metadata=_metadata(None, causation_id=causation_id),
                )
                for i, e in enumerate(events)
            ]
            await self._append(conn, track_id, items, version, None)
            return model.fold(events, state)

    @staticmethod
    def _job_event_id(job_key: str, step: str) -> Callable[[int], uuid.UUID]:
        # Deterministic ids: a retried job appends the same events, which the store dedupes.
        return lambda i: uuid.uuid5(uuid.NAMESPACE_URL, f"lufy:process_upload:{job_key}:{step}:{i}")

    async def start_transcoding(self, track_id: uuid.UUID, job_key: str) -> model.TrackState:
        return await self._system_decide(
            track_id,
            lambda s: model.decide_start(s, StartTranscoding(job_key=job_key)),
            self._job_event_id(job_key, "started"),
            job_key,
        )

    async def finish_transcoding(
        self, track_id: uuid.UUID, job_key: str, result: FinishTranscoding
    ) -> model.TrackState:
        return await self._system_decide(
            track_id,
            lambda s: model.decide_finish(s, result),
            self._job_event_id(job_key, "transcoded"),
            job_key,
        )

    async def fail_transcoding(
        self, track_id: uuid.UUID, job_key: str, reason: str
    ) -> model.TrackState:
        return await self._system_decide(
            track_id,
            lambda s: model.decide_fail(s, FailTranscoding(reason=reason)),
            self._job_event_id(job_key, "failed"),
            job_key,
        )

    # --- catalogue ----------------------------------------------------------------------------

    async def list_tracks(
        self,
        principal: Principal | None,
        *,
        artist_id: uuid.UUID | None = None,
        status: str | None = None,
        published_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Track]:
        user_id, role = (principal.user_id, principal.role) if principal else (None, None)
        async with self.db.transaction(user_id=user_id, role=role) as conn:
            cur = await conn.execute(
                _Q.list_tracks,
                {
                    "artist_id": artist_id,
                    "status": status,
                    "published_only": published_only,
                    "limit": limit,
                    "offset": offset,
                },
            )
            return [_track(r) for r in await cur.fetchall()]

    async def get_track(self, principal: Principal | None, track_id: uuid.UUID) -> Track:
        user_id, role = (principal.user_id, principal.role) if principal else (None, None)
        async with self.db.transaction(user_id=user_id, role=role) as conn:
            cur = await conn.execute(_Q.get_track, {"id": track_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError("no such track")
        return _track(row)

    async def _command(
        self,
        principal: Principal,
        track_id: uuid.UUID,
        decide: Callable[[model.TrackState], list[Event]],
    ) -> model.TrackState:
        async with self.db.transaction(user_id=principal.user_id, role=principal.role) as conn:
            # RLS first: a track the caller cannot see does not exist for them.
            cur = await conn.execute(_Q.get_track, {"id": track_id})
            if await cur.fetchone() is None:
                raise NotFoundError("no such track")
            state, version = await self._load(conn, track_id)
            events = decide(state)
            await self._append(conn, track_id, events, version, principal.user_id)
            return model.fold(events, state)

    async def update_track(
        self, principal: Principal, track_id: uuid.UUID, body: TrackUpdate
    ) -> Track:
        title = body.title.strip() if body.title is not None else None
        if title == "":
            raise ValidationFailedError("title: must not be blank")
        command = UpdateTrack(actor_id=principal.user_id, admin=principal.is_admin, title=title)
        await self._command(principal, track_id, lambda s: model.decide_update(s, command))
        return await self.get_track(principal, track_id)

    async def publish(self, principal: Principal, track_id: uuid.UUID) -> Track:
        command = PublishTrack(actor_id=principal.user_id, admin=principal.is_admin)
        await self._command(principal, track_id, lambda s: model.decide_publish(s, command))
        return await self.get_track(principal, track_id)

    async def unpublish(self, principal: Principal, track_id: uuid.UUID) -> Track:
        command = UnpublishTrack(actor_id=principal.user_id, admin=principal.is_admin)
        await self._command(principal, track_id, lambda s: model.decide_unpublish(s, command))
        return await self.get_track(principal, track_id)

    async def delete(self, principal: Principal, track_id: uuid.UUID) -> None:
        command = DeleteTrack(actor_id=principal.user_id, admin=principal.is_admin)
        state = await self._command(principal, track_id, lambda s: model.decide_delete(s, command))
        await asyncio.to_thread(self.remove_media, track_id, state.storage_key)

    def remove_media(self, track_id: uuid.UUID, upload_key: str | None) -> None:
        """Remove the HLS package and the source: with them gone, no token plays the track."""
        self.storage.delete_prefix(f"hls/{track_id}/")
        if upload_key:
            self.storage.delete(upload_key)

    # --- delivery -----------------------------------------------------------------------------

    async def authorize_stream(
        self, principal: Principal | None, track_id: uuid.UUID
    ) -> StreamGrant:
        user_id = principal.user_id if principal else None
        grant_id = uuid.uuid4()
        issued_at = self.clock()
        expires_at = signing.stream_token_expiry(issued_at)
        # The listener as analytics counts them (a keyed hash), never the user id (privacy).
        event = StreamAuthorized(
            track_id=track_id,
            listener_key=await self.listener_hasher.key(self.db, user_id),
            expires_at=expires_at,
            delivery=delivery.delivery_mode(self.settings),
            grant_id=grant_id,
        )
        # One statement decides and appends; the tier's read is pipelined behind it (grants.py).
        tier = await record_grant(
            self.grants or self.db,
            self.store.codec,
            self.tier_resolver,
            principal,
            STREAM_AUTH_STREAM,
            track_id,
            NewEvent(event=event, occurred_at=issued_at, metadata=_metadata(None)),
        )
        token, _ = signing.issue_stream_token(
            self.settings.jwt_secret,
            track_id=track_id,
            subject=user_id,
            grant_id=grant_id,
            tier=tier,
            now=issued_at,
        )
        url = delivery.stream_url(self.settings, token, track_id)
        return StreamGrant(url=url, token=token, expires_at=expires_at, grant_id=grant_id)
