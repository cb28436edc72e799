"""What an analytics batch is made of, and the checks each of its events passes.

The shapes a client (`IncomingEvent`) or an import file (`ImportedEvent`) sends, what the
transport knows about the sender (`IngestContext`), the result of a batch, decoding a request
body, and `validate`: why one event is rejected, or the candidate it becomes. Writing the
accepted ones is `analytics.ingest`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec

from lufy.analytics.classify import country_code, device_class, listener_identity
from lufy.analytics.events import ANALYTICS_TYPES
from lufy.errors import LufyError, PayloadTooLargeError

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "Candidate",
    "ImportedEvent",
    "IncomingEvent",
    "IngestContext",
    "IngestResult",
    "MalformedBodyError",
    "Rejection",
    "decode_batch",
    "user_of",
    "validate",
]

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


def reason_of(exc: msgspec.ValidationError) -> str:
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


def user_of(item: IncomingEvent, context: IngestContext) -> uuid.UUID | None:
    """The signed-in listener: an import line's `listener_id`, else the caller."""
    return item.listener_id if isinstance(item, ImportedEvent) else context.user_id


class Candidate(msgspec.Struct):
    """A valid event of a batch, with its index and the listener identity it samples by."""

    index: int
    item: IncomingEvent
    identity: str


def validate(
    index: int,
    raw: Any,
    context: IngestContext,
    event_type: type[IncomingEvent],
    now: datetime,
) -> tuple[str | None, Candidate | None]:
    """Why the `index`th event of a batch is rejected, or what it is to be written as."""
    if isinstance(raw, event_type):
        item = raw
    elif not isinstance(raw, dict):
        return "an event must be a JSON object", None
    else:
        try:
            item = msgspec.convert(raw, type=event_type)
        except msgspec.ValidationError as exc:
            return reason_of(exc), None
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
    return None, Candidate(index, item, identity)
