"""The event store: an append-only JSONB log in PostgreSQL."""

from __future__ import annotations

from lufy.eventstore.bulk import BulkRows
from lufy.eventstore.codec import EventCodec, default_codec
from lufy.eventstore.envelope import (
    ANY,
    NO_STREAM,
    AppendResult,
    Checkpoint,
    Event,
    EventMetadata,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
)
from lufy.eventstore.notifier import Notifier
from lufy.eventstore.postgres import BulkResult, EventStore, Page
from lufy.eventstore.subscription import Subscription

__all__ = [
    "ANY",
    "NO_STREAM",
    "AppendResult",
    "BulkResult",
    "BulkRows",
    "Checkpoint",
    "Event",
    "EventCodec",
    "EventMetadata",
    "EventStore",
    "ExpectedVersion",
    "NewEvent",
    "Notifier",
    "Page",
    "RecordedEvent",
    "Subscription",
    "default_codec",
]
