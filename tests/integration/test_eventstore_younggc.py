"""A catching-up Subscription raises the young GC threshold while it catches up (younggc.py)
and puts it back once caught up."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import psycopg

from lufy.eventstore import ANY, Event, EventCodec, EventStore, NewEvent, Subscription, younggc


class Noted(Event, frozen=True, tag="test.noted"):
    text: str


async def test_the_young_gc_threshold_is_raised_while_catching_up_and_put_back_after(
    settings, app_conn
) -> None:
    store = EventStore(EventCodec([Noted]))
    for i in range(8):
        batch = [NewEvent(event=Noted(text=f"{i}.{k}")) for k in range(5)]
        await store.append(app_conn, "note", "a", batch, expected=ANY)
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    reader: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
        settings.DATABASE_URL, autocommit=True
    )
    try:
        sub = Subscription(store, settings.DATABASE_URL, batch_size=7, read_ahead_pages=2)
        seen: list[int] = []
        got: list[Any] = []

        async def run() -> None:
            async for page in sub.pages(reader):
                seen.append(gc.get_threshold()[0])
                got.extend(page.events)
                if len(got) >= 40:
                    sub.stop()

        await asyncio.wait_for(run(), timeout=150)  # bounds a hang only
        assert [e.data.text for e in got] == [f"{i}.{k}" for i in range(8) for k in range(5)]
        assert seen[0] == younggc.YOUNG  # the first full page started a read-ahead
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)
        await reader.close()
