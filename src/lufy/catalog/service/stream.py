"""Stream authorisation: `GET /api/music/tracks/{id}/stream` records a grant and answers with a
signed stream URL. The database work is one statement (`lufy.catalog.grants`); this part
builds the grant's event and the token the listener's tier allows."""

from __future__ import annotations

import uuid

from lufy.catalog.events import STREAM_AUTH_STREAM, StreamAuthorized
from lufy.catalog.grants import record_grant
from lufy.catalog.schemas import StreamGrant
from lufy.catalog.service.base import CatalogBase, metadata
from lufy.eventstore import NewEvent
from lufy.identity import Principal
from lufy.media import delivery, signing

__all__ = ["StreamGrants"]


class StreamGrants(CatalogBase):
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
        # One statement decides, appends and reads what the tier needs: one round trip (grants.py).
        tier = await record_grant(
            self.grants or self.db,
            self.store.codec,
            self.tier_resolver,
            principal,
            STREAM_AUTH_STREAM,
            track_id,
            NewEvent(event=event, occurred_at=issued_at, metadata=metadata(None)),
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
