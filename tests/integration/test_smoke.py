from __future__ import annotations

from lufy.eventstore import NO_STREAM, EventStore, NewEvent
from lufy.operations.events import ProjectionRebuilt


async def test_an_appended_event_is_read_back_from_its_stream(app_conn, store: EventStore) -> None:
    event = ProjectionRebuilt(projection="p", version=1, events_applied=0)
    result = await store.append(
        app_conn, "operations", "p", [NewEvent(event=event)], expected=NO_STREAM
    )
    events = await store.read_stream(app_conn, "operations", "p")
    assert [e.global_position for e in events] == result.positions
    assert events[0].data == event
