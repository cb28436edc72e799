"""What every part of the catalog service shares: its dependencies, loading and appending.

`CatalogBase` holds the dependencies, loads a track's state from its stream (`_load`), appends
a decision's events with the tracks read model updated inline (`_append`), and runs a
decision as `system` with deterministic event ids (`_system_decide`: the upload sweep and the
media-processing job). The concerns built on it are in the sibling modules;
`lufy.catalog.service` says how they are composed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from lufy.catalog import model
from lufy.catalog.events import TRACK_STREAM
from lufy.catalog.grants import GrantConnections, Subscription
from lufy.catalog.projections import TRACKS
from lufy.db import Database
from lufy.eventstore import NO_STREAM, EventMetadata, EventStore, NewEvent
from lufy.eventstore.envelope import Event
from lufy.identity import event_metadata
from lufy.media import signing
from lufy.media.storage import BlobStorage
from lufy.privacy.listeners import ListenerHasher
from lufy.projections.inline import append_inline
from lufy.settings import Settings

__all__ = ["CatalogBase", "TierResolver", "everyone_premium", "metadata", "normalize_content_type"]

# Which tier a listener's stream tokens carry (None: an anonymous listener), read in the
# grant's own transaction at the grant's time. Injected: the default gives everyone premium
# (no payments configured: everything plays as it always did); with Stripe configured,
# bootstrap passes the payments context's entitlements. A resolver that is also a
# `lufy.catalog.grants.TierRule` (both of those) has its read made by the grant's own statement.
TierResolver = Callable[[AsyncConnection[Any], uuid.UUID | None, datetime], Awaitable[signing.Tier]]


class _EveryonePremium:
    """Premium for everyone, with no read at all (a `TierRule` that needs no subscriptions)."""

    subscriptions = False

    async def __call__(
        self, conn: AsyncConnection[Any], listener_id: uuid.UUID | None, now: datetime
    ) -> signing.Tier:
        return "premium"

    def tier_of(self, subscriptions: Sequence[Subscription], now: datetime) -> signing.Tier:
        return "premium"


everyone_premium = _EveryonePremium()


def normalize_content_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def metadata(actor: uuid.UUID | None, causation_id: str | None = None) -> EventMetadata:
    return EventMetadata(**event_metadata(actor, causation_id=causation_id))


class CatalogBase:
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
            e if isinstance(e, NewEvent) else NewEvent(event=e, metadata=metadata(actor))
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
                    metadata=metadata(None, causation_id=causation_id),
                )
                for i, e in enumerate(events)
            ]
            await self._append(conn, track_id, items, version, None)
            return model.fold(events, state)
