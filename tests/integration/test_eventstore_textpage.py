"""Pages read as one row of text (page_reader="text", the default): the same pages as the
one-row-per-event reader ("plain"), the server-built JSON ("json") and the event-by-event path,
whatever the app strings hold (U+001F, the text's separator, included) and whatever the
session's time zone (test_eventstore_plainpage.py compares "plain" with "json")."""

from __future__ import annotations

from typing import Any

import pytest

from lufy.eventstore import ANY, Checkpoint, EventStore, NewEvent, plainpage
from tests.integration.test_eventstore_plainpage import (
    AWKWARD,
    Odd,
    Plain,
    _codec,
    _events,
    _no_fallback,
    _pages,
    _settle,
    _write_awkward,
)


@pytest.fixture
def rows_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first position of every page the text reader read again as rows (its text did not
    split)."""
    reads: list[int] = []
    original = plainpage.assemble

    def spy(rows: Any, current: Any) -> str:
        reads.append(int(rows[0][2]))
        return original(rows, current)

    monkeypatch.setattr(plainpage, "assemble", spy)
    return reads


async def test_app_strings_round_trip_through_the_text_page(app_conn, rows_reads) -> None:
    await _write_awkward(app_conn)
    precise, _, _ = await EventStore(_codec(), page_reader="text")._read_rows(
        app_conn, query_types=None, params={"tx": 0, "pos": 0, "limit": 10_000}
    )
    text = EventStore(_codec(), page_reader="text")
    assert text.page_reader == "text"
    _no_fallback(text)
    for limit in (1, 4, 1000):
        rows_reads.clear()
        assert await _events(text, app_conn, limit) == precise
        assert rows_reads  # the pages holding the stream whose type and id hold U+001F
    # Pages of one event: only that stream's two events were read as rows.
    rows_reads.clear()
    one = await _events(text, app_conn, 1)
    assert "\x1f" in AWKWARD[4]
    assert [e.stream_type for e in one if e.data == Odd(note=AWKWARD[4])] == [AWKWARD[4]]
    assert len(rows_reads) == 2


async def test_a_page_without_the_separator_is_read_in_one_row(app_conn, rows_reads) -> None:
    store = EventStore(_codec(), page_reader="text")
    for i, value in enumerate(['"q"', "\\", "é 🎵", "\t\n", "\x7f"]):
        await store.append(
            app_conn, value, f"{value}{i}", [NewEvent(event=Odd(note=value))], expected=ANY
        )
        await store.append(app_conn, "p", "p", [NewEvent(event=Plain(n=i))], expected=ANY)
    await _settle(app_conn)
    _no_fallback(store)
    plain = EventStore(_codec(), page_reader="plain")
    for limit in (3, 1000):
        expected = await _events(plain, app_conn, limit)
        rows_reads.clear()
        assert await _events(store, app_conn, limit) == expected
        assert rows_reads == []


async def test_a_value_holding_the_separator_sends_its_page_to_the_rows(
    app_conn, rows_reads
) -> None:
    store = EventStore(_codec(), page_reader="text")
    await store.append(app_conn, "a", "1", [NewEvent(event=Plain(n=1))], expected=ANY)
    await store.append(app_conn, "a\x1f", "\x1f2\x1f", [NewEvent(event=Plain(n=2))], expected=ANY)
    await _settle(app_conn)
    _no_fallback(store)
    events = await _events(store, app_conn, 1)
    assert [(e.stream_type, e.stream_id, e.data) for e in events] == [
        ("a", "1", Plain(n=1)),
        ("a\x1f", "\x1f2\x1f", Plain(n=2)),
    ]
    assert rows_reads == [events[1].global_position]


@pytest.mark.parametrize("reader", ["text", "copy", "columns"])
@pytest.mark.parametrize("types", [None, ["test.plain"], ['odd\t"type\\\n', "test.old"], []])
async def test_text_pages_are_the_plain_ones(app_conn, types: list[str] | None, reader) -> None:
    """The one-row-of-text reader's and the COPY reader's pages (test_eventstore_copypage.py)."""
    await _write_awkward(app_conn)
    readers = [EventStore(_codec(), page_reader=reader), EventStore(_codec(), page_reader="plain")]
    _no_fallback(readers[0])
    for limit in (3, 1000):
        text, plain = [await _pages(reader, app_conn, limit, types) for reader in readers]
        assert [p.events for p in text] == [p.events for p in plain]
        # The last page's checkpoint is the barrier's (each read took its own).
        assert [p.checkpoint for p in text[:-1]] == [p.checkpoint for p in plain[:-1]]
    firsts = [await r.fetch_page(app_conn, Checkpoint.START, limit=2, types=types) for r in readers]
    assert len({(raw.count, raw.last, raw.full) for raw in firsts}) == 1


@pytest.mark.parametrize("reader", ["text", "copy", "columns"])
async def test_the_session_time_zone_does_not_change_the_text_page(app_conn, reader) -> None:
    await _write_awkward(app_conn)
    store = EventStore(_codec(), page_reader=reader)
    reference = await _events(store, app_conn, 5)
    await app_conn.execute("SET TimeZone = 'Asia/Kathmandu'")
    _no_fallback(store)
    assert await _events(store, app_conn, 5) == reference
    await app_conn.execute("SET DateStyle = 'SQL, DMY'")  # the precise path, as "plain"
    assert await _events(EventStore(_codec(), page_reader=reader), app_conn, 5) == reference
    await app_conn.execute("SET DateStyle = 'SQL, DMY'")  # the precise path, as "plain"
    assert await _events(EventStore(_codec(), page_reader="text"), app_conn, 5) == reference
