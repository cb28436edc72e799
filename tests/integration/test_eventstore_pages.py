"""Pages of the log decoded in one call: the same events, field for field, as event by event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from lufy.errors import UnknownEventTypeError
from lufy.eventstore import Checkpoint, Event, EventCodec, EventMetadata, EventStore, NewEvent
from lufy.eventstore.envelope import RecordedEvent


class Played(Event, frozen=True, tag="test.played"):
    track_id: uuid.UUID
    listened_ms: int
    note: str = ""
    tags: list[str] = []
    at: datetime | None = None


class Emptied(Event, frozen=True, tag="test.emptied"):
    pass


class TitledV1(Event, frozen=True, tag="test.titled"):
    name: str


class TitledV2(Event, frozen=True, tag="test.titled"):
    schema_version: ClassVar[int] = 2
    title: str


def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return {"title": payload["name"].upper()}


async def _everything(store: EventStore, conn: Any, limit: int) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    checkpoint = Checkpoint.START
    while True:
        page = await store.read_all(conn, checkpoint, limit=limit)
        out.extend(page.events)
        checkpoint = page.checkpoint
        if len(page.events) < limit:
            return out


async def _row_by_row(store: EventStore, conn: Any) -> list[RecordedEvent]:
    events, _, _ = await store._read_rows(
        conn, query_types=None, params={"tx": 0, "pos": 0, "limit": 10_000}
    )
    return events


async def test_a_page_decoded_in_one_call_equals_the_event_by_event_decoding(app_conn) -> None:
    store = EventStore(EventCodec([Played, Emptied, TitledV2], {("test.titled", 1): _v1_to_v2}))
    track = uuid.uuid4()
    awkward = 'quote " backslash \\ newline \n tab \t unicode é 🎵 nul-free'
    await store.append(
        app_conn,
        "listener",
        awkward,
        [
            NewEvent(
                event=Played(track_id=track, listened_ms=30_000, note=awkward, tags=["a", "b"]),
                metadata=EventMetadata(correlation_id="c-1", weight=2.5, extra={"k": [1, None]}),
                occurred_at=datetime(2020, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
            ),
            NewEvent(event=Emptied()),
            NewEvent(
                event=Played(
                    track_id=track,
                    listened_ms=-1,
                    at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=1),
                )
            ),
        ],
        expected=0,
    )
    # An event stored at an older schema version, between current ones.
    old = EventStore(EventCodec([TitledV1]))
    await old.append(app_conn, "doc", "1", [NewEvent(event=TitledV1(name="blue"))], expected=0)
    await store.append(app_conn, "doc", "1", [NewEvent(event=TitledV2(title="Ok"))], expected=1)
    await store.append_bulk(
        app_conn,
        [NewEvent(event=Emptied(), stream_type="bulk", stream_id=f"b-{i}") for i in range(5)],
    )

    reference = await _row_by_row(store, app_conn)

    async def no_fallback(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the page fell back to the event-by-event path")

    store._read_rows = no_fallback  # type: ignore[method-assign]
    for limit in (1, 3, 1000):
        paged = await _everything(store, app_conn, limit)
        assert paged == reference
    assert len(paged) == 10
    first = paged[0]
    assert first.stream_id == awkward
    assert first.data == Played(track_id=track, listened_ms=30_000, note=awkward, tags=["a", "b"])
    assert first.metadata == EventMetadata(correlation_id="c-1", weight=2.5, extra={"k": [1, None]})
    assert first.occurred_at == datetime(2020, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    assert type(first) is RecordedEvent
    assert paged[1].data == Emptied()
    assert [e.data for e in paged if e.type == "test.titled"] == [
        TitledV2(title="BLUE"),
        TitledV2(title="Ok"),
    ]
    assert [e.schema_version for e in paged if e.type == "test.titled"] == [1, 2]
    assert [e.stream_version for e in paged[-5:]] == [None] * 5


async def test_a_type_filtered_page_decodes_only_its_types(app_conn) -> None:
    store = EventStore(EventCodec([Played, Emptied]))
    await store.append(
        app_conn,
        "s",
        "1",
        [NewEvent(event=Emptied()), NewEvent(event=Played(track_id=uuid.uuid4(), listened_ms=1))],
        expected=0,
    )
    page = await store.read_all(app_conn, types=["test.played"])
    assert [e.type for e in page.events] == ["test.played"]
    assert page.checkpoint >= page.events[-1].checkpoint


async def test_an_unregistered_type_in_a_page_is_the_precise_error(app_conn) -> None:
    writer = EventStore(EventCodec([Played, Emptied]))
    await writer.append(app_conn, "s", "1", [NewEvent(event=Emptied())], expected=0)
    reader = EventStore(EventCodec([Played]))
    with pytest.raises(UnknownEventTypeError, match=r"test\.emptied"):
        await reader.read_all(app_conn)
