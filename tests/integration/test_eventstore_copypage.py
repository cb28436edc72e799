"""Pages read with COPY … TO STDOUT (page_reader="copy"): the same pages as the
one-row-per-event reader ("plain"), the one-row-of-text reader ("text") and the event-by-event
path, whatever the app strings and payloads hold (COPY's escapes: backslash, tab, newline, CR and
the other control characters; U+001F is an ordinary character here) and whatever the session's
time zone (test_eventstore_plainpage.py compares "plain" with "json")."""

from __future__ import annotations

import asyncio

from lufy.eventstore import ANY, Checkpoint, EventStore, NewEvent
from lufy.eventstore.envelope import EventMetadata
from tests.integration import test_eventstore_plainpage as plain_tests
from tests.integration.test_eventstore_plainpage import Odd, Plain

AWKWARD, _codec, _events = plain_tests.AWKWARD, plain_tests._codec, plain_tests._events
_no_fallback, _settle, _write_awkward = (
    plain_tests._no_fallback,
    plain_tests._settle,
    plain_tests._write_awkward,
)


async def test_escaped_payloads_and_metadata_round_trip(app_conn) -> None:
    store = EventStore(_codec(), page_reader="copy")
    notes = ["\x1f", "a\x1fb\tc\\d\ne", '\\"', "\\\\N", "\u2028", "\r\x0b\x0c\x08"]
    for i, note in enumerate(notes):
        meta = EventMetadata(correlation_id=note + "\\" + str(i), actor_id='"\t')
        await store.append(
            app_conn, note, note, [NewEvent(event=Odd(note=note), metadata=meta)], expected=ANY
        )
        await store.append(app_conn, "p", "p", [NewEvent(event=Plain(n=i))], expected=ANY)
    await _settle(app_conn)
    _no_fallback(store)
    text = EventStore(_codec(), page_reader="text")
    for limit in (1, 3, 1000):
        events = await _events(store, app_conn, limit)
        assert events == await _events(text, app_conn, limit)
    assert [e.data for e in events if isinstance(e.data, Odd)] == [Odd(note=n) for n in notes]
    assert [e.metadata.correlation_id for e in events if isinstance(e.data, Odd)] == [
        n + "\\" + str(i) for i, n in enumerate(notes)
    ]
    assert {e.metadata.actor_id for e in events if isinstance(e.data, Odd)} == {'"\t'}


# The copy reader's pages against the plain reader's, with type filters: in
# test_eventstore_textpage.py (test_text_pages_are_the_plain_ones).


async def test_an_empty_copy_page_carries_the_barrier(app_conn) -> None:
    store = EventStore(_codec(), page_reader="copy")
    raw = await store.fetch_page(app_conn, Checkpoint.START, limit=10, types=["test.none"])
    page = await store.decode_page(app_conn, raw)
    assert (raw.count, raw.last, page.events) == (0, None, [])
    assert raw.barrier > 0
    assert page.checkpoint == Checkpoint(raw.barrier, 0)


async def test_a_copy_page_in_a_transaction_leaves_it_usable(app_conn) -> None:
    store = EventStore(_codec(), page_reader="copy")
    await store.append(app_conn, "a", "1", [NewEvent(event=Plain(n=1))], expected=ANY)
    await _settle(app_conn)
    async with app_conn.transaction():
        page = await store.read_all(app_conn, limit=10)
        cur = await app_conn.execute("SELECT 41 + 1")
        assert await cur.fetchone() == (42,)
    assert [e.data for e in page.events] == [Plain(n=1)]


async def test_a_copy_page_cut_off_leaves_the_connection_usable(app_conn) -> None:
    store = EventStore(_codec(), page_reader="copy")
    await store.append_bulk(
        app_conn, [NewEvent(event=Plain(n=i), stream_type="b", stream_id="1") for i in range(3000)]
    )
    await _settle(app_conn)
    for delay in (0, 0.001, 0.005):
        task = asyncio.ensure_future(store.fetch_page(app_conn, Checkpoint.START, limit=3000))
        await asyncio.sleep(delay)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        page = await store.read_all(app_conn, limit=3000)
        assert [e.data for e in page.events] == [Plain(n=i) for i in range(3000)]
