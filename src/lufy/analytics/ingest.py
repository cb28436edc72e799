"""Analytics ingestion: validate a batch event by event, sample, enrich, append with COPY.

(The shapes of a batch and the per-event checks are `analytics.intake`; its public names are
importable from here too.)

Shared by `POST /api/analytics/events` and `lufy events import`. A bad event is rejected with its
index and a reason while the rest are accepted; ids already in the log are reported as
duplicates and written nothing (so a client may retry a batch as often as it likes).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from lufy.analytics.classify import country_code, is_bot, is_sampled_in, listener_key
from lufy.analytics.events import BY_TYPE, STREAM_TYPE
from lufy.analytics.intake import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    Candidate,
    ImportedEvent,
    IncomingEvent,
    IngestContext,
    IngestResult,
    MalformedBodyError,
    Rejection,
    decode_batch,
    user_of,
    validate,
)
from lufy.db import Database
from lufy.errors import LufyError
from lufy.eventstore import EventMetadata, EventStore, NewEvent
from lufy.identity import event_metadata
from lufy.observability import ANALYTICS_EVENTS, record_ingest
from lufy.privacy.listeners import ListenerKeys, month_of, seal_listener_fields
from lufy.sqlfiles import load_queries

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "ImportedEvent",
    "IncomingEvent",
    "IngestContext",
    "IngestResult",
    "Ingestor",
    "MalformedBodyError",
    "Rejection",
    "decode_batch",
]

_Q = load_queries("lufy.analytics")


def record_bots(n: int) -> None:
    if n:
        ANALYTICS_EVENTS.labels("bot").inc(n)


class Ingestor:
    """Stateless apart from caches of facts that never change (the HMAC key, track owners)."""

    def __init__(
        self,
        db: Database,
        store: EventStore,
        *,
        sample_rate: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.store = store
        self.sample_rate = sample_rate
        self.clock = clock
        self._secret: bytes | None = None
        # A track's artist never changes; unknown ids are not cached (the track may be created
        # a moment later).
        self._track_artist: dict[uuid.UUID, uuid.UUID] = {}
        self._artists: set[uuid.UUID] = set()
        self._listener_keys = ListenerKeys()

    async def ingest_http(
        self, body: bytes, context: IngestContext, *, user_agent: str | None
    ) -> IngestResult:
        """A request body from a client: known bots are dropped (and counted) unread."""
        events = decode_batch(body)
        if is_bot(user_agent):
            record_bots(len(events))
            return IngestResult()
        result = await self.ingest(events, context)
        record_ingest(
            accepted=result.accepted,
            duplicates=result.duplicates,
            sampled_out=result.sampled_out,
            rejected=len(result.rejected),
        )
        return result

    async def ingest(
        self,
        raw_events: Sequence[Any],
        context: IngestContext,
        *,
        event_type: type[IncomingEvent] = IncomingEvent,
    ) -> IngestResult:
        result = IngestResult()
        candidates = self._sampled_candidates(raw_events, context, event_type, result)
        if not candidates:
            return result
        await self._resolve(candidates)
        secret = await self._hmac_key()
        seal = await self._listener_sealer(candidates, context)
        weight = 1.0 / self.sample_rate
        new_events: list[NewEvent] = []
        for c in candidates:
            artist_id, problem = self._artist_of(c.item)
            if problem is not None:
                result.rejected.append(Rejection(c.index, problem))
                continue
            new_events.append(_new_event(c, artist_id, secret, seal, context, weight))
        result.rejected.sort(key=lambda r: r.index)
        if new_events:
            async with self.db.connection() as conn:
                written = await self.store.append_bulk(conn, new_events)
            result.accepted = len(written.inserted)
            result.duplicates = len(written.duplicates)
        return result

    def _sampled_candidates(
        self,
        raw_events: Sequence[Any],
        context: IngestContext,
        event_type: type[IncomingEvent],
        result: IngestResult,
    ) -> list[Candidate]:
        """The valid events that sampling keeps; the others are counted in `result`."""
        now = self.clock()
        candidates: list[Candidate] = []
        for index, raw in enumerate(raw_events):
            reason, candidate = validate(index, raw, context, event_type, now)
            if reason is not None:
                result.rejected.append(Rejection(index, reason))
            elif candidate is not None:
                if is_sampled_in(candidate.identity, self.sample_rate):
                    candidates.append(candidate)
                else:
                    result.sampled_out += 1
        return candidates

    def _artist_of(self, item: IncomingEvent) -> tuple[uuid.UUID | None, str | None]:
        """The event's artist (its track's owner when it names a track), or why it is rejected;
        `_resolve` has cached what is known."""
        artist_id = item.artist_id
        if item.track_id is not None:
            owner = self._track_artist.get(item.track_id)
            if owner is None:
                return None, "unknown track"
            if artist_id is not None and artist_id != owner:
                return None, "artist_id is not the artist of track_id"
            return owner, None
        if artist_id is not None and artist_id not in self._artists:
            return None, "unknown artist"
        return artist_id, None

    async def _listener_sealer(
        self, candidates: Sequence[Candidate], context: IngestContext
    ) -> _Sealer:
        """Raw listener ids are stored sealed, per person and per month (privacy.listeners):
        the keys of the batch's listeners and months, and a sealer that reuses the sealed text
        within the batch (`listener_key` links those events anyway)."""
        people = {u for c in candidates if (u := user_of(c.item, context)) is not None}
        months = {month_of(c.item.occurred_at) for c in candidates}
        keys = await self._listener_keys.load(self.db, people, months)
        done: dict[tuple[Any, ...], tuple[str | None, str | None]] = {}

        def seal(item: IncomingEvent, ctx: IngestContext) -> tuple[str | None, str | None]:
            what = (user_of(item, ctx), item.anonymous_id, month_of(item.occurred_at))
            if what not in done:
                done[what] = seal_listener_fields(keys, what[2], what[0], what[1])
            return done[what]

        return seal

    async def _hmac_key(self) -> bytes:
        if self._secret is None:
            async with self.db.connection() as conn:
                cur = await conn.execute(_Q.hmac_key)
                row = await cur.fetchone()
            if row is None:
                raise LufyError("analytics secret missing: run `lufy migrate`")
            self._secret = bytes(row[0])
        return self._secret

    async def _resolve(self, candidates: Sequence[Candidate]) -> None:
        tracks = {c.item.track_id for c in candidates if c.item.track_id is not None}
        artists = {
            c.item.artist_id
            for c in candidates
            if c.item.artist_id is not None and c.item.track_id is None
        }
        tracks -= self._track_artist.keys()
        artists -= self._artists
        if not tracks and not artists:
            return
        async with self.db.transaction(role="system") as conn:
            if tracks:
                cur = await conn.execute(_Q.known_tracks, {"ids": list(tracks)})
                for track_id, artist_id in await cur.fetchall():
                    self._track_artist[track_id] = artist_id
            if artists:
                cur = await conn.execute(_Q.known_artists, {"ids": list(artists)})
                self._artists.update(r[0] for r in await cur.fetchall())
        if len(self._track_artist) > 200_000:
            self._track_artist.clear()
        if len(self._artists) > 200_000:
            self._artists.clear()


_Sealer = Callable[[IncomingEvent, IngestContext], tuple[str | None, str | None]]


def _new_event(
    c: Candidate,
    artist_id: uuid.UUID | None,
    secret: bytes,
    seal: _Sealer,
    context: IngestContext,
    weight: float,
) -> NewEvent:
    """The log event a checked candidate becomes: enriched, its listener sealed."""
    item = c.item
    imported = item if isinstance(item, ImportedEvent) else None
    listener_id, anonymous_id = seal(item, context)
    event = BY_TYPE[item.type](
        session_id=item.session_id,
        listener_key=listener_key(secret, c.identity),
        listener_id=listener_id,
        anonymous_id=anonymous_id,
        track_id=item.track_id,
        artist_id=artist_id,
        listened_ms=item.listened_ms,
        grant_id=item.grant_id,
        imported=context.historical,
        source=item.source,
        country=country_code(imported.country) if imported else context.country,
        device=imported.device if imported else context.device,
        properties=item.properties,
    )
    return NewEvent(
        event=event,
        event_id=item.event_id,
        occurred_at=item.occurred_at.astimezone(UTC),
        metadata=EventMetadata(
            **event_metadata(
                weight=weight, correlation=context.correlation_id, request=context.request_id
            )
        ),
        stream_type=STREAM_TYPE,
        stream_id=item.session_id,
    )
