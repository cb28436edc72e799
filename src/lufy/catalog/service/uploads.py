"""Uploads: an artist asks for an upload target, sends the file, completes the upload.

A request is checked (type, extension, size, title) and counted against the artist's quotas
(uploads in flight, bytes stored) under a per-artist lock; the target is the object store's
presigned upload when it has one, else the app's own signed upload URL. Uploads never completed
are abandoned by a sweep and their source deleted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from psycopg import AsyncConnection

from lufy.catalog import model
from lufy.catalog.commands import AbandonUpload, CompleteUpload, RequestUpload
from lufy.catalog.schemas import (
    ALLOWED_TYPES,
    MAX_UPLOAD_BYTES,
    UploadAccepted,
    UploadCreate,
    UploadTicket,
)
from lufy.catalog.service.base import CatalogBase, normalize_content_type
from lufy.errors import (
    ConcurrencyError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationFailedError,
)
from lufy.identity import Principal
from lufy.media import signing
from lufy.media.storage import UploadTarget
from lufy.media.uploads import UnsupportedMediaTypeError
from lufy.sqlfiles import load_queries

__all__ = ["ABANDONED_REASON", "ABANDON_AFTER", "UPLOAD_TTL", "Uploads"]

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


def _checked(body: UploadCreate) -> tuple[str, str, str]:
    """The request's content type, file extension and title, or the 4xx saying what is wrong."""
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
    return content_type, extension, title


class Uploads(CatalogBase):
    async def request_upload(self, principal: Principal, body: UploadCreate) -> UploadTicket:
        if principal.role != "artist":
            raise PermissionDeniedError("only artists can upload music")
        content_type, extension, title = _checked(body)
        now = self.clock()
        track_id, upload_id = uuid.uuid4(), uuid.uuid4()
        key = f"uploads/{track_id}/source{extension}"
        target = self._upload_target(principal, upload_id, key, content_type, body.size_bytes, now)
        command = RequestUpload(
            track_id=track_id,
            upload_id=upload_id,
            artist_id=principal.user_id,
            title=title,
            filename=PurePosixPath(body.filename).name,
            content_type=content_type,
            size_bytes=body.size_bytes,
            storage_key=key,
            expires_at=target.expires_at,
        )
        async with self.db.transaction(user_id=principal.user_id, role=principal.role) as conn:
            await self._check_upload_quota(conn, principal.user_id, body.size_bytes, now)
            events = model.decide_request_upload(model.TrackState(), command)
            await self._append(conn, track_id, events, 0, principal.user_id)
        return UploadTicket(
            upload_id=upload_id,
            track_id=track_id,
            method="PUT" if target.method == "PUT" else "POST",
            url=target.url,
            headers=target.headers,
            expires_at=target.expires_at,
        )

    def _upload_target(
        self,
        principal: Principal,
        upload_id: uuid.UUID,
        key: str,
        content_type: str,
        size_bytes: int,
        now: datetime,
    ) -> UploadTarget:
        """The object store's presigned upload when it has one; else the app's own upload URL
        (`PUT /media/uploads/{id}`) with a signed token."""
        expires_at = (now + UPLOAD_TTL).replace(microsecond=0)
        target = self.storage.upload_target(
            key,
            content_type=content_type,
            size_bytes=size_bytes,
            expires_in=int(UPLOAD_TTL.total_seconds()),
        )
        if target is not None:
            return UploadTarget(
                method=target.method,
                url=target.url,
                headers=target.headers,
                expires_at=target.expires_at.replace(microsecond=0),
            )
        token = signing.issue_upload_token(
            self.settings.jwt_secret,
            artist_id=principal.user_id,
            upload_id=upload_id,
            key=key,
            content_type=content_type,
            size_bytes=size_bytes,
            expires_at=expires_at,
        )
        return UploadTarget(
            method="PUT",
            url=f"{self.settings.APP_URL}/media/uploads/{upload_id}?token={token}",
            headers={"Content-Type": content_type},
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
