"""Pages read as plain columns, their JSON built on the client (page_reader="plain"): the same
pages as the server-built JSON (page_reader="json") and the event-by-event path, whatever the
app strings hold and whatever the session's time zone and date style."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from lufy.eventstore import Checkpoint, Event, EventCodec, EventStore, NewEvent
from lufy.eventstore.envelope import RecordedEvent
from lufy.eventstore.postgres import Page

# What COPY's text format and JSON strings escape, and what neither does.
AWKWARD = [
    "tab\there",
    "new\nline\r\n",
    "back\\slash \\N \\t \\\\",
    'quote " and "" and \\"',
    "ctl \x01\x08\x0b\x0c\x1f\x7f",
    "unicode é 🎵 \u2028 \u2029",
    '"},{"global_position":1,"type":"x',
    "\\N",
    "Z",
]


class Odd(Event, frozen=True, tag='odd\t"type\\\n'):
    note: str = ""


class Plain(Event, frozen=True, tag="test.plain"):
    n: int


class OldV1(Event, frozen=True, tag="test.old"):
    name: str


class OldV2(Event, frozen=True, tag="test.old"):
    schema_version: ClassVar[int] = 2
    title: str


def _codec() -> EventCodec:
    return EventCodec([Odd, Plain, OldV2], {("test.old", 1): lambda p: {"title": p["name"]}})


async def _pages(store: EventStore, conn: Any, limit: int, types: Any = None) -> list[Page]:
    """The whole log in pages, below one barrier taken once everything written is below it
    (a fresh barrier may come out lower when other sessions' transactions start meanwhile)."""
    barrier = await _settle(conn)
    out: list[Page] = []
    checkpoint = Checkpoint.START
    while True:
        raw = await store.fetch_page(conn, checkpoint, limit=limit, types=types, barrier=barrier)
        page = await store.decode_page(conn, raw)
        out.append(page)
        checkpoint = page.checkpoint
        if len(page.events) < limit:
            return out


def _no_fallback(store: EventStore) -> None:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the page fell back to the event-by-event path")

    store._read_rows = fail  # type: ignore[method-assign]


async def _settle(conn: Any) -> int:
    """A read barrier above every event written: other sessions' open transactions on this
    shared server may hold it below them for a moment."""
    store = EventStore(_codec())
    cur = await conn.execute("SELECT max(transaction_id)::text::bigint FROM lufy.events")
    row = await cur.fetchone()
    for _ in range(600):
        barrier = (await store.barrier(conn)).transaction_id
        if barrier > row[0]:
            return barrier
        await asyncio.sleep(0.05)
    raise AssertionError("the read barrier did not pass the events written")


async def _events(store: EventStore, conn: Any, limit: int) -> list[RecordedEvent]:
    return [e for p in await _pages(store, conn, limit) for e in p.events]


async def _write_awkward(conn: Any) -> None:
    store = EventStore(_codec())
    await EventStore(EventCodec([OldV1])).append(
        conn, "doc", "old", [NewEvent(event=OldV1(name="v1"))], expected=0
    )
    for i, text in enumerate(AWKWARD):
        await store.append(
            conn,
            text,
            text + str(i),
            [
                NewEvent(event=Odd(note=text), occurred_at=datetime(1999, 12, 31, tzinfo=UTC)),
                NewEvent(event=Plain(n=i)),
            ],
            expected=0,
        )
    await store.append_bulk(
        conn, [NewEvent(event=Odd(), stream_type="\t", stream_id=f"\\{i}\n") for i in range(3)]
    )
    await _settle(conn)


@pytest.mark.parametrize("reader", ["plain", "copy"])
async def test_app_strings_round_trip_through_the_plain_page(app_conn, reader) -> None:
    await _write_awkward(app_conn)
    precise, _, _ = await EventStore(_codec())._read_rows(
        app_conn, query_types=None, params={"tx": 0, "pos": 0, "limit": 10_000}
    )
    plain = EventStore(_codec(), page_reader=reader)
    _no_fallback(plain)
    for limit in (1, 4, 1000):
        events = await _events(plain, app_conn, limit)
        assert events == precise
    assert len(events) == 1 + 2 * len(AWKWARD) + 3
    odd = [e for e in events if e.type == 'odd\t"type\\\n' and e.stream_version is not None]
    assert [e.stream_type for e in odd] == AWKWARD
    assert [e.stream_id for e in odd] == [t + str(i) for i, t in enumerate(AWKWARD)]
    assert [e.data for e in odd] == [Odd(note=t) for t in AWKWARD]
    assert {e.occurred_at for e in odd} == {datetime(1999, 12, 31, tzinfo=UTC)}
    assert events[0].data == OldV2(title="v1")
    assert [e.stream_id for e in events[-3:]] == ["\\0\n", "\\1\n", "\\2\n"]
    assert [e.stream_version for e in events[-3:]] == [None] * 3


@pytest.mark.parametrize("types", [None, ["test.plain"], ['odd\t"type\\\n', "test.old"], []])
async def test_plain_and_json_pages_are_the_same(app_conn, types: list[str] | None) -> None:
    await _write_awkward(app_conn)
    plain = EventStore(_codec(), page_reader="plain")
    json = EventStore(_codec(), page_reader="json")
    _no_fallback(plain)
    for limit in (3, 1000):
        ours = await _pages(plain, app_conn, limit, types)
        theirs = await _pages(json, app_conn, limit, types)
        assert [p.events for p in ours] == [p.events for p in theirs]
        # The last page's checkpoint is the barrier's (each read took its own).
        assert [p.checkpoint for p in ours[:-1]] == [p.checkpoint for p in theirs[:-1]]
    raw = await plain.fetch_page(app_conn, Checkpoint.START, limit=2, types=types)
    same = await json.fetch_page(app_conn, Checkpoint.START, limit=2, types=types)
    assert (raw.count, raw.last, raw.full) == (same.count, same.last, same.full)
    assert raw.barrier <= same.barrier


async def test_the_session_time_zone_and_date_style_do_not_change_the_page(app_conn) -> None:
    await _write_awkward(app_conn)
    plain = EventStore(_codec(), page_reader="plain")
    reference = await _events(plain, app_conn, 5)
    assert len(reference) == 1 + 2 * len(AWKWARD) + 3
    await app_conn.execute("SET TimeZone = 'Asia/Kathmandu'")
    _no_fallback(plain)
    assert await _events(plain, app_conn, 5) == reference
    # Another date style does not give RFC 3339 text: the page is read the precise way.
    await app_conn.execute("SET DateStyle = 'SQL, DMY'")
    fallback = EventStore(_codec(), page_reader="plain")
    assert await _events(fallback, app_conn, 5) == reference
