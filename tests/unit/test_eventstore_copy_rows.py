"""`copy_rows`: the COPY text lines of a bulk batch, with its ids and times encoded for the
whole batch at once, read back by PostgreSQL as the same values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from lufy.analytics.events import PlaybackStarted
from lufy.eventstore import EventMetadata, NewEvent
from lufy.eventstore.bulk import copy_rows
from lufy.eventstore.codec import default_codec


def _new(at: datetime | None, event_id: uuid.UUID | None = None) -> NewEvent:
    return NewEvent(
        event=PlaybackStarted(session_id="s\t1", listener_key="k"),
        event_id=event_id or uuid.uuid4(),
        occurred_at=at,
        metadata=EventMetadata(weight=1.0),
        stream_type="analytics",
        stream_id="s\t1",
    )


def test_each_line_holds_its_own_id_and_instant_and_repeated_ids_are_left_out() -> None:
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3))]
    times = [
        datetime(2026, 1, 15, 12, 0, 0, 123456 * (n % 2), tzinfo=zones[n % 3]) + timedelta(hours=n)
        for n in range(6)
    ]
    events = [_new(at) for at in times]
    repeated = _new(times[0], events[2].event_id)

    batch = copy_rows(default_codec(), [*events, repeated])

    assert batch.check_first is True
    assert batch.duplicates == [events[2].event_id]
    assert [event_id for event_id, _ in batch.rows] == [e.event_id for e in events]
    assert batch.ids == "{" + ",".join(str(e.event_id) for e in events) + "}"
    for event, (_, line) in zip(events, batch.rows, strict=True):
        fields = line.rstrip("\n").split("\t")
        assert fields[0] == str(event.event_id)
        # The session id's tab is escaped for COPY, as in the stream id column.
        assert fields[1:5] == ["analytics", "s\\t1", "playback.started", "1"]
        at = datetime.fromisoformat(fields[7])
        assert event.occurred_at is not None
        assert (at, at.utcoffset()) == (event.occurred_at, event.occurred_at.utcoffset())


def test_an_event_without_a_time_gets_the_time_of_the_batch() -> None:
    before = datetime.now(UTC)
    batch = copy_rows(default_codec(), [_new(None)])
    at = datetime.fromisoformat(batch.rows[0][1].rstrip("\n").split("\t")[7])
    assert before <= at <= datetime.now(UTC)
