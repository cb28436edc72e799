"""`lufy events tail`: print events as they are committed."""

from __future__ import annotations

from collections.abc import Collection

import msgspec
import psycopg

from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.postgres import EventStore
from lufy.eventstore.subscription import Subscription
from lufy.settings import Settings

__all__ = ["follow"]

_encoder = msgspec.json.Encoder()


async def follow(
    store: EventStore,
    settings: Settings,
    types: Collection[str] | None,
    *,
    from_start: bool = False,
) -> None:
    """Print every event of `types` (all: None) from the end of the log (or its start), read
    with `store` (its codec decodes them) on a connection of its own, until cancelled."""
    async with await psycopg.AsyncConnection.connect(
        settings.DATABASE_URL, autocommit=True
    ) as conn:
        start = Checkpoint.START if from_start else await store.barrier(conn)
        subscription = Subscription(store, settings.DATABASE_URL, after=start, types=types)
        async for page in subscription.pages(conn):
            for event in page.events:
                line = {
                    "global_position": event.global_position,
                    "type": event.type,
                    "stream": f"{event.stream_type}/{event.stream_id}",
                    "stream_version": event.stream_version,
                    "occurred_at": event.occurred_at,
                    "data": event.data,
                    "metadata": event.metadata,
                }
                print(_encoder.encode(line).decode(), flush=True)
