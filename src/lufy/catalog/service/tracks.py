"""A track's lifecycle by its artist (or an admin): edit, publish, unpublish, delete.

Each command runs in the caller's context: a track the caller cannot see does not exist for
them (404), and the model decides whether the caller may act on one they can see. Deleting a
track removes its media, so no stream token plays it any more.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from lufy.catalog import model
from lufy.catalog.commands import DeleteTrack, PublishTrack, UnpublishTrack, UpdateTrack
from lufy.catalog.schemas import Track, TrackUpdate
from lufy.catalog.service.reads import TrackReads
from lufy.errors import NotFoundError, ValidationFailedError
from lufy.eventstore.envelope import Event
from lufy.identity import Principal
from lufy.sqlfiles import load_queries

__all__ = ["TrackLifecycle"]

_Q = load_queries("lufy.catalog")


class TrackLifecycle(TrackReads):
    """On `TrackReads`: each command answers with the track as the caller now sees it."""

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
