"""What the store knows about an event beyond the event itself."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Generic

import msgspec
from typing_extensions import TypeVar

__all__ = [
    "ANY",
    "NO_STREAM",
    "AppendResult",
    "Checkpoint",
    "Event",
    "EventMetadata",
    "ExpectedVersion",
    "NewEvent",
    "RecordedEvent",
]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every domain and analytics event: an immutable, past-tense fact.

    Subclasses give a `tag` such as `catalog.track_published`. A breaking change bumps
    `schema_version` and adds an upcaster from the previous version (see codec.py).
    """

    schema_version: ClassVar[int] = 1


# gc=False (here and on RecordedEvent): instances are not tracked by the cyclic garbage
# collector. A catch-up decodes thousands per page and, tracked, they pushed the collector into
# full collections every few pages (docs/benchmarks.md, issue 18). Frozen and built from decoded
# JSON or the caller's values, they never form a reference cycle of their own.
class EventMetadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    correlation_id: str | None = None
    causation_id: str | None = None
    actor_id: str | None = None
    request_id: str | None = None
    # Analytics: 1 / sample rate, so sums of weights are unbiased estimates.
    weight: float | None = None
    extra: dict[str, Any] | None = None


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event about to be appended: the fact plus its id, time and metadata."""

    event: Event
    event_id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    occurred_at: datetime | None = None
    metadata: EventMetadata = msgspec.field(default_factory=EventMetadata)
    # Only the bulk path takes the stream per event; the versioned path takes it per call.
    stream_type: str | None = None
    stream_id: str | None = None


# What `RecordedEvent.data` holds. Generic only so that a page can be decoded in one msgspec call
# into `RecordedEvent[A | B | ...]` (a tagged union of the registered events); everywhere else
# `RecordedEvent` means `RecordedEvent[Event]`, and every instance is of class RecordedEvent.
EventT = TypeVar("EventT", bound="Event", default="Event", covariant=True)


class RecordedEvent(msgspec.Struct, Generic[EventT], frozen=True, kw_only=True, gc=False):
    global_position: int
    transaction_id: int
    event_id: uuid.UUID
    stream_type: str
    stream_id: str
    stream_version: int | None
    type: str
    schema_version: int
    data: EventT
    metadata: EventMetadata
    occurred_at: datetime
    recorded_at: datetime

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.transaction_id, self.global_position)


class Checkpoint(msgspec.Struct, frozen=True, order=True, array_like=True):
    """A reader's place in the log: everything at or before (transaction_id, position) is done."""

    transaction_id: int = 0
    global_position: int = 0

    START: ClassVar[Checkpoint]


Checkpoint.START = Checkpoint(0, 0)


class AppendResult(msgspec.Struct, frozen=True):
    positions: list[int]
    stream_version: int
    transaction_id: int
    # True when every event id already existed: nothing was written.
    idempotent_replay: bool = False


class _Sentinel(msgspec.Struct, frozen=True):
    name: str
    code: int


ExpectedVersion = int | _Sentinel
NO_STREAM: ExpectedVersion = _Sentinel("no_stream", -1)
ANY: ExpectedVersion = _Sentinel("any", -2)
