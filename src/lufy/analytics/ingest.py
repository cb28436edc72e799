"""Analytics ingestion: validate a batch event by event, sample, enrich, append with COPY.

Shared by `POST /api/analytics/events` and `lufy events import`. A bad event is rejected with its
index and a reason while the rest are accepted; ids already in the log are reported as
duplicates and written nothing (so a client may retry a batch as often as it likes).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec

from lufy.analytics.classify import (
    country_code,
    device_class,
    is_bot,
    is_sampled_in,
    listener_identity,
    listener_key,
)
from lufy.analytics.events import ANALYTICS_TYPES, BY_TYPE, STREAM_TYPE
from lufy.db import Database
from lufy.errors import LufyError, PayloadTooLargeError
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
MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 1024 * 1024
PAST_WINDOW = timedelta(days=7)
FUTURE_WINDOW = timedelta(minutes=10)
MAX_LISTENED_MS = 24 * 3600 * 1000

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Short = Annotated[str, msgspec.Meta(max_length=64)]


class MalformedBodyError(LufyError):
    status = 400
    title = "Malformed request body"


class IncomingEvent(msgspec.Struct, kw_only=True):
    """One analytics event as a client sends it to `POST /api/analytics/events`."""

    event_id: uuid.UUID
    type: str
    occurred_at: datetime
    session_id: _Id
    anonymous_id: _Id | None = None
    track_id: uuid.UUID | None = None
    artist_id: uuid.UUID | None = None
    listened_ms: Annotated[int, msgspec.Meta(ge=0, le=MAX_LISTENED_MS)] | None = None
    # The stream grant's id (`GET /api/music/tracks/{id}/stream`): what verifies a session.
    grant_id: uuid.UUID | None = None
    source: _Short | None = None
    properties: dict[str, Any] | None = None


class ImportedEvent(IncomingEvent, kw_only=True):
    """One line of an import file: the same shape plus what the HTTP path derives itself."""

    listener_id: uuid.UUID | None = None
    country: str | None = None
    device: _Short | None = None


class Rejection(msgspec.Struct, frozen=True):
    index: int
    reason: str


class IngestResult(msgspec.Struct, kw_only=True):
    accepted: int = 0
    duplicates: int = 0
    sampled_out: int = 0
    rejected: list[Rejection] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class IngestContext:
    """What the transport knows about the sender. The client IP is deliberately absent."""

    user_id: uuid.UUID | None = None
    country: str | None = None
    device: str | None = None
    correlation_id: str | None = None
    request_id: str | None = None
    # HTTP clients may only report the recent past; imports backfill any past time.
    historical: bool = False

    @classmethod
    def from_headers(
        cls,
        *,
        user_agent: str | None,
        viewer_country: str | None,
        user_id: uuid.UUID | None,
        correlation_id: str | None = None,
        request_id: str | None = None,
    ) -> IngestContext:
        return cls(
            user_id=user_id,
            country=country_code(viewer_country),
            device=device_class(user_agent),
            correlation_id=correlation_id,
            request_id=request_id,
        )


_body_decoder = msgspec.json.Decoder(dict[str, Any])


class _Batch(msgspec.Struct):
    events: list[IncomingEvent]


# The common case, a batch of well-formed events, is decoded straight into Structs; a batch with
# any bad event is decoded again generically, event by event, to name each bad one.
_fast_decoder = msgspec.json.Decoder(_Batch)


def decode_batch(body: bytes) -> list[Any]:
    """The `events` list of a request body, or a 400/413 naming what is wrong."""
    if len(body) > MAX_BATCH_BYTES:
        raise PayloadTooLargeError(
            f"a batch may be at most {MAX_BATCH_BYTES} bytes; this one is {len(body)}"
        )
    try:
        typed = _fast_decoder.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        pass
    else:
        if len(typed) > MAX_BATCH_EVENTS:
            raise PayloadTooLargeError(
                f"a batch may hold at most {MAX_BATCH_EVENTS} events; this one has {len(typed)}"
            )
        return typed
    try:
        payload = _body_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedBodyError(f'body must be a JSON object {{"events": [...]}}: {exc}') from None
    except RecursionError:
        raise MalformedBodyError("body is nested too deeply to be a batch of events") from None
    events = payload.get("events")
    if not isinstance(events, list):
        raise MalformedBodyError('body must be a JSON object with an "events" array')
    if len(events) > MAX_BATCH_EVENTS:
        raise PayloadTooLargeError(
            f"a batch may hold at most {MAX_BATCH_EVENTS} events; this one has {len(events)}"
        )
    return events


def record_bots(n: int) -> None:
    if n:
        ANALYTICS_EVENTS.labels("bot").inc(n)


def _reason(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    # "Expected `str`, got `int` - at `$.session_id`" -> "session_id: Expected `str`, got `int`"
    if " - at `$." in text:
        message, _, where = text.rpartition(" - at `$.")
        return f"{where.rstrip('`')}: {message}"
    return text


_TEXT_FIELDS = ("session_id", "anonymous_id", "source", "country", "device")


MAX_PROPERTIES_DEPTH = 32
# Free-form properties go into a log that is never deleted: bounded per event.
MAX_PROPERTIES_BYTES = 4 * 1024
MAX_PROPERTIES_KEYS = 32


def _properties_problem(properties: dict[str, Any] | None) -> str | None:
    """Too many keys, or too many bytes (as compact JSON), for one event's `properties`."""
    if properties is None:
        return None
    if len(properties) > MAX_PROPERTIES_KEYS:
        return (
            f"properties: at most {MAX_PROPERTIES_KEYS} keys per event; "
            f"this one has {len(properties)}"
        )
    size = len(msgspec.json.encode(properties))
    if size > MAX_PROPERTIES_BYTES:
        return (
            f"properties: at most {MAX_PROPERTIES_BYTES} bytes (as JSON) per event; "
            f"this one has {size}"
        )
    return None


def _text_problem(item: IncomingEvent) -> str | None:
    """What PostgreSQL could not store, per event (instead of failing the whole batch's COPY):
    a NUL character in any text, or properties nested absurdly deep."""
    for name in _TEXT_FIELDS:
        value = getattr(item, name, None)
        if isinstance(value, str) and "\x00" in value:
            return f"{name}: must not contain NUL (\\u0000) characters"
    if item.properties is not None:
        found = _scan(item.properties, 0)
        if found == "deep":
            return f"properties: nested more than {MAX_PROPERTIES_DEPTH} levels deep"
        if found == "nul":
            return "properties: must not contain NUL (\\u0000) characters"
    return None


def _scan(value: Any, depth: int) -> str | None:
    if isinstance(value, str):
        return "nul" if "\x00" in value else None
    if depth >= MAX_PROPERTIES_DEPTH and isinstance(value, dict | list):
        return "deep"
    if isinstance(value, dict):
        for k, v in value.items():
            found = _scan(k, depth + 1) or _scan(v, depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for v in value:
            found = _scan(v, depth + 1)
            if found:
                return found
    return None


def _user_of(item: IncomingEvent, context: IngestContext) -> uuid.UUID | None:
    """The signed-in listener: an import line's `listener_id`, else the caller."""
    return item.listener_id if isinstance(item, ImportedEvent) else context.user_id


class _Candidate(msgspec.Struct):
    index: int
    item: IncomingEvent
    identity: str


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
        now = self.clock()
        weight = 1.0 / self.sample_rate
        candidates: list[_Candidate] = []
        for index, raw in enumerate(raw_events):
            reason, candidate = self._validate(index, raw, context, event_type, now)
            if reason is not None:
                result.rejected.append(Rejection(index, reason))
            elif candidate is not None:
                if is_sampled_in(candidate.identity, self.sample_rate):
                    candidates.append(candidate)
                else:
                    result.sampled_out += 1
        if not candidates:
            return result
        await self._resolve(candidates)
        secret = await self._hmac_key()
        seal = await self._listener_sealer(candidates, context)
        new_events: list[NewEvent] = []
        for c in candidates:
            item = c.item
            artist_id = item.artist_id
            if item.track_id is not None:
                owner = self._track_artist.get(item.track_id)
                if owner is None:
                    result.rejected.append(Rejection(c.index, "unknown track"))
                    continue
                if artist_id is not None and artist_id != owner:
                    result.rejected.append(
                        Rejection(c.index, "artist_id is not the artist of track_id")
                    )
                    continue
                artist_id = owner
            elif artist_id is not None and artist_id not in self._artists:
                result.rejected.append(Rejection(c.index, "unknown artist"))
                continue
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
            new_events.append(
                NewEvent(
                    event=event,
                    event_id=item.event_id,
                    occurred_at=item.occurred_at.astimezone(UTC),
                    metadata=EventMetadata(
                        **event_metadata(
                            weight=weight,
                            correlation=context.correlation_id,
                            request=context.request_id,
                        )
                    ),
                    stream_type=STREAM_TYPE,
                    stream_id=item.session_id,
                )
            )
        result.rejected.sort(key=lambda r: r.index)
        if new_events:
            async with self.db.connection() as conn:
                written = await self.store.append_bulk(conn, new_events)
            result.accepted = len(written.inserted)
            result.duplicates = len(written.duplicates)
        return result

    def _validate(
        self,
        index: int,
        raw: Any,
        context: IngestContext,
        event_type: type[IncomingEvent],
        now: datetime,
    ) -> tuple[str | None, _Candidate | None]:
        if isinstance(raw, event_type):
            item = raw
        elif not isinstance(raw, dict):
            return "an event must be a JSON object", None
        else:
            try:
                item = msgspec.convert(raw, type=event_type)
            except msgspec.ValidationError as exc:
                return _reason(exc), None
        if item.type not in ANALYTICS_TYPES:
            return f"type: unknown event type {item.type!r}", None
        problem = _text_problem(item) or _properties_problem(item.properties)
        if problem is not None:
            return problem, None
        if item.occurred_at.tzinfo is None:
            return "occurred_at: must be RFC 3339 with a UTC offset", None
        if item.occurred_at > now + FUTURE_WINDOW:
            return "occurred_at: more than 10 minutes in the future", None
        if not context.historical and item.occurred_at < now - PAST_WINDOW:
            return "occurred_at: more than 7 days in the past", None
        needs_track = item.type.startswith(("playback.", "track."))
        if needs_track and item.track_id is None:
            return f"track_id: required for {item.type}", None
        if item.type.startswith("artist.") and item.artist_id is None and item.track_id is None:
            return f"artist_id: required for {item.type}", None
        if isinstance(item, ImportedEvent):
            if item.country is not None and country_code(item.country) is None:
                return "country: must be an ISO 3166 alpha-2 code", None
            user_id = item.listener_id
        else:
            user_id = context.user_id
        identity = listener_identity(user_id, item.anonymous_id)
        if identity is None:
            return "anonymous_id: required when the listener is not signed in", None
        return None, _Candidate(index, item, identity)

    async def _listener_sealer(
        self, candidates: Sequence[_Candidate], context: IngestContext
    ) -> Callable[[IncomingEvent, IngestContext], tuple[str | None, str | None]]:
        """Raw listener ids are stored sealed, per person and per month (privacy.listeners):
        the keys of the batch's listeners and months, and a sealer that reuses the sealed text
        within the batch (`listener_key` links those events anyway)."""
        people = {u for c in candidates if (u := _user_of(c.item, context)) is not None}
        months = {month_of(c.item.occurred_at) for c in candidates}
        keys = await self._listener_keys.load(self.db, people, months)
        done: dict[tuple[Any, ...], tuple[str | None, str | None]] = {}

        def seal(item: IncomingEvent, ctx: IngestContext) -> tuple[str | None, str | None]:
            what = (_user_of(item, ctx), item.anonymous_id, month_of(item.occurred_at))
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

    async def _resolve(self, candidates: Sequence[_Candidate]) -> None:
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
