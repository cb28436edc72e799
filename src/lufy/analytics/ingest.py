"""Analytics ingestion: validate a batch event by event, sample, enrich, append with COPY.

(The shapes of a batch and the per-event checks are `analytics.intake`; its public names are
importable from here too.)

Shared by `POST /api/analytics/events` and `lufy events import`. A bad event is rejected with its
index and a reason while the rest are accepted; ids already in the log are reported as
duplicates and written nothing (so a client may retry a batch as often as it likes).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

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
from lufy.eventstore import BulkResult, BulkRows, EventMetadata, EventStore, NewEvent
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
    "PreparedBatch",
    "Rejection",
    "decode_batch",
]

_Q = load_queries("lufy.analytics")
_T = TypeVar("_T")


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
        # Sealed (listener_id, anonymous_id) by (user, anonymous id, month): _listener_sealer.
        self._sealed: dict[tuple[Any, ...], tuple[str | None, str | None]] = {}

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
        return await self.write(await self.prepare(raw_events, context, event_type=event_type))

    async def prepare(
        self,
        raw_events: Sequence[Any],
        context: IngestContext,
        *,
        event_type: type[IncomingEvent] = IncomingEvent,
        offload: bool = False,
        writers: int = 1,
    ) -> PreparedBatch:
        """Everything but the append: checks, sampling, enrichment, sealing, COPY rows. With
        `offload` the CPU-bound steps run in a worker thread, so that the event loop keeps
        writing an earlier batch meanwhile (`lufy events import` pipelines its chunks). With
        `writers` > 1 the rows are split by session (a session's events stay in one part, in
        their order) into that many parts, which `write` appends on as many connections at
        once."""
        result = IngestResult()
        candidates, needs = await _run(
            offload, self._checked, raw_events, context, event_type, result
        )
        if not candidates:
            return PreparedBatch(result, [])
        await self._resolve(needs)
        secret = await self._hmac_key()
        seal = await self._listener_sealer(needs)
        # One metadata object for the whole batch: the bulk path encodes it once.
        metadata = EventMetadata(
            **event_metadata(
                weight=1.0 / self.sample_rate,
                correlation=context.correlation_id,
                request=context.request_id,
            )
        )

        def rows() -> list[BulkRows]:
            new_events: list[NewEvent] = []
            for c in candidates:
                artist_id, problem = self._artist_of(c.item)
                if problem is not None:
                    result.rejected.append(Rejection(c.index, problem))
                    continue
                new_events.append(_new_event(c, artist_id, secret, seal, context, metadata))
            result.rejected.sort(key=lambda r: r.index)
            return [self.store.bulk_rows(part) for part in _split(new_events, writers) if part]

        return PreparedBatch(result, await _run(offload, rows))

    async def write(self, prepared: PreparedBatch) -> IngestResult:
        """Append a prepared batch (idempotent by event id); its result, counts filled in."""
        result = prepared.result
        for written in await asyncio.gather(*map(self._append, prepared.rows)):
            result.accepted += len(written.inserted)
            result.duplicates += len(written.duplicates)
        return result

    async def _append(self, rows: BulkRows) -> BulkResult:
        async with self.db.connection() as conn:
            return await self.store.append_bulk_rows(conn, rows)

    def _checked(
        self,
        raw_events: Sequence[Any],
        context: IngestContext,
        event_type: type[IncomingEvent],
        result: IngestResult,
    ) -> tuple[list[Candidate], _Needs]:
        """`_sampled_candidates`, and what their enrichment and sealing need looked up."""
        candidates = self._sampled_candidates(raw_events, context, event_type, result)
        needs = _Needs()
        for c in candidates:
            item = c.item
            if item.track_id is not None:
                needs.tracks.add(item.track_id)
            elif item.artist_id is not None:
                needs.artists.add(item.artist_id)
            user = user_of(item, context)
            if user is not None:
                needs.people.add(user)
            needs.months.add(month_of(item.occurred_at))
        return candidates, needs

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

    async def _listener_sealer(self, needs: _Needs) -> _Sealer:
        """Raw listener ids are stored sealed, per person and per month (privacy.listeners):
        the keys of the batch's listeners and months, and a sealer that reuses the sealed text
        for the same listener and month (`listener_key` links those events anyway), across
        batches of one process, as long as no cached key was dropped meanwhile
        (`ListenerKeys.refreshes`; a batch loads the keys of every listener and month it seals
        for, so a reused text never outlives the key it was sealed with in the cache)."""
        refreshes = self._listener_keys.refreshes
        keys = await self._listener_keys.load(self.db, needs.people, needs.months)
        if self._listener_keys.refreshes != refreshes or len(self._sealed) > 200_000:
            self._sealed = {}
        done = self._sealed

        def seal(item: IncomingEvent, ctx: IngestContext) -> tuple[str | None, str | None]:
            what = (user_of(item, ctx), item.anonymous_id, month_of(item.occurred_at))
            sealed = done.get(what)
            if sealed is None:
                sealed = done[what] = seal_listener_fields(keys, what[2], what[0], what[1])
            return sealed

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

    async def _resolve(self, needs: _Needs) -> None:
        tracks = needs.tracks - self._track_artist.keys()
        artists = needs.artists - self._artists
        if not tracks and not artists:
            return
        # Bounded caches, emptied before (not after) this batch's ids go in.
        if len(self._track_artist) + len(tracks) > 200_000:
            self._track_artist.clear()
            tracks = set(needs.tracks)
        if len(self._artists) + len(artists) > 200_000:
            self._artists.clear()
            artists = set(needs.artists)
        async with self.db.transaction(role="system") as conn:
            if tracks:
                cur = await conn.execute(_Q.known_tracks, {"ids": list(tracks)})
                for track_id, artist_id in await cur.fetchall():
                    self._track_artist[track_id] = artist_id
            if artists:
                cur = await conn.execute(_Q.known_artists, {"ids": list(artists)})
                self._artists.update(r[0] for r in await cur.fetchall())


@dataclass
class _Needs:
    """What a batch's candidates name: tracks and artists to resolve, people and months whose
    keys seal their listener ids."""

    tracks: set[uuid.UUID] = field(default_factory=set)
    artists: set[uuid.UUID] = field(default_factory=set)
    people: set[uuid.UUID] = field(default_factory=set)
    months: set[date] = field(default_factory=set)


@dataclass
class PreparedBatch:
    """A batch checked and encoded by `Ingestor.prepare`, for `Ingestor.write`."""

    result: IngestResult
    rows: list[BulkRows]


def _split(events: list[NewEvent], parts: int) -> list[list[NewEvent]]:
    """`events` in `parts` parts by session; an event id seen again goes where it went first
    (so that no two parts written at once carry the same id: each part finds it a duplicate
    within itself, never by waiting on the other's unique-index entry)."""
    if parts == 1:
        return [events]
    split: list[list[NewEvent]] = [[] for _ in range(parts)]
    first: dict[int, int] = {}
    for event in events:
        part = first.setdefault(event.event_id.int, hash(event.stream_id) % parts)
        split[part].append(event)
    return split


async def _run(offload: bool, fn: Callable[..., _T], *args: Any) -> _T:
    return await asyncio.to_thread(fn, *args) if offload else fn(*args)


_Sealer = Callable[[IncomingEvent, IngestContext], tuple[str | None, str | None]]


def _new_event(
    c: Candidate,
    artist_id: uuid.UUID | None,
    secret: bytes,
    seal: _Sealer,
    context: IngestContext,
    metadata: EventMetadata,
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
        metadata=metadata,
        stream_type=STREAM_TYPE,
        stream_id=item.session_id,
    )
