"""Pages read column by column (page_reader="columns", the default): the same pages as the
one-row-per-event reader ("plain") and the event-by-event path, whatever the app strings and
payloads hold (U+001F and the JSON separators included), of one type or many, stored at the
current schema version or an older one; a page whose app strings do not split, or whose rows the
aggregates took out of log order, is read another way (test_eventstore_textpage.py compares the
readers under type filters and session time zones)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from lufy.eventstore import ANY, Checkpoint, Event, EventCodec, EventStore, NewEvent, columnpage
from lufy.eventstore.envelope import EventMetadata
from tests.integration import test_eventstore_plainpage as plain_tests
from tests.integration.test_eventstore_plainpage import Odd, OldV1, OldV2, Plain

AWKWARD, _codec, _events = plain_tests.AWKWARD, plain_tests._codec, plain_tests._events
_no_fallback, _settle, _write_awkward = (
    plain_tests._no_fallback,
    plain_tests._settle,
    plain_tests._write_awkward,
)


class Empty(Event, frozen=True, tag="test.empty"):
    pass


@pytest.fixture
def rereads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """(first position asked after, one_row) of every page the column reader read again with
    read_page_text (one_row) or read_page_plain."""
    reads: list[tuple[int, bool]] = []
    original = columnpage.fetch_plain_page

    async def spy(conn: Any, params: Any, after: Checkpoint, *args: Any, one_row: bool) -> Any:
        reads.append((after.global_position, one_row))
        return await original(conn, params, after, *args, one_row=one_row)

    monkeypatch.setattr(columnpage, "fetch_plain_page", spy)
    return reads


def test_the_column_reader_is_the_default() -> None:
    assert EventStore(_codec()).page_reader == "columns"


async def test_app_strings_round_trip_through_the_columns(app_conn, rereads) -> None:
    await _write_awkward(app_conn)
    precise, _, _ = await EventStore(_codec())._read_rows(
        app_conn, query_types=None, params={"tx": 0, "pos": 0, "limit": 10_000}
    )
    store = EventStore(_codec(), page_reader="columns")
    _no_fallback(store)
    for limit in (1, 4, 1000):
        rereads.clear()
        assert await _events(store, app_conn, limit) == precise
        assert rereads
        assert {one_row for _, one_row in rereads} == {False}
    # Pages of one event: only that stream's two events (type and id hold U+001F) as rows.
    rereads.clear()
    one = await _events(store, app_conn, 1)
    assert "\x1f" in AWKWARD[4]
    assert [e.stream_type for e in one if e.data == Odd(note=AWKWARD[4])] == [AWKWARD[4]]
    assert len(rereads) == 2
    assert one[0].data == OldV2(title="v1")  # stored at version 1, upcast


async def test_payloads_and_metadata_that_hold_the_separators_round_trip(app_conn, rereads) -> None:
    store = EventStore(EventCodec([Odd, Plain, Empty]), page_reader="columns")
    notes = ["\x1f", ",", '","', 'Z","', "a\x1fb\tc\\d\ne", "}{", "\u2028", "é 🎵", ""]
    for i, note in enumerate(notes):
        meta = EventMetadata(correlation_id=note + str(i), extra={"k": note, "n": [i, None]})
        await store.append(
            app_conn, "s", str(i), [NewEvent(event=Odd(note=note), metadata=meta)], expected=ANY
        )
        await store.append(app_conn, "p", "p", [NewEvent(event=Plain(n=i))], expected=ANY)
        await store.append(app_conn, "e", "e", [NewEvent(event=Empty())], expected=ANY)
    await _settle(app_conn)
    _no_fallback(store)
    plain = EventStore(EventCodec([Odd, Plain, Empty]), page_reader="plain")
    for limit in (1, 2, 3, 1000):
        events = await _events(store, app_conn, limit)
        assert events == await _events(plain, app_conn, limit)
    assert rereads == []
    assert [e.data for e in events if isinstance(e.data, Odd)] == [Odd(note=n) for n in notes]
    assert [e.metadata for e in events if isinstance(e.data, Odd)] == [
        EventMetadata(correlation_id=n + str(i), extra={"k": n, "n": [i, None]})
        for i, n in enumerate(notes)
    ]
    assert [e.data for e in events if e.type == "test.empty"] == [Empty()] * len(notes)


async def test_a_page_out_of_log_order_is_read_with_the_ordered_aggregate(
    app_conn, rereads, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EventStore(_codec(), page_reader="columns")
    for i in range(5):
        await store.append(app_conn, "a", "1", [NewEvent(event=Plain(n=i))], expected=ANY)
    await _settle(app_conn)
    expected = await _events(EventStore(_codec(), page_reader="plain"), app_conn, 1000)
    # The same rows, handed to the aggregates in the opposite order.
    query = columnpage._READ_PAGE_COLUMNS
    reversed_rows = query.replace(
        b"FROM (SELECT ev.*", b"FROM (SELECT * FROM (SELECT ev.*"
    ).replace(b") e\n) p ON true", b") r ORDER BY r.global_position DESC) e\n) p ON true")
    assert reversed_rows.count(b"DESC") == 1
    monkeypatch.setattr(columnpage, "_READ_PAGE_COLUMNS", reversed_rows)
    _no_fallback(store)
    assert await _events(store, app_conn, 1000) == expected
    assert rereads == [(0, True)]
    rereads.clear()
    assert await _events(store, app_conn, 1) == expected  # a page of one is in order
    assert rereads == []


async def test_an_empty_column_page_carries_the_barrier(app_conn) -> None:
    store = EventStore(_codec(), page_reader="columns")
    raw = await store.fetch_page(app_conn, Checkpoint.START, limit=10, types=["test.none"])
    page = await store.decode_page(app_conn, raw)
    assert (raw.count, raw.last, page.events) == (0, None, [])
    assert raw.barrier > 0
    assert page.checkpoint == Checkpoint(raw.barrier, 0)


async def test_an_unregistered_type_raises_as_with_the_other_readers(app_conn) -> None:
    await EventStore(EventCodec([Odd, Plain])).append(
        app_conn, "x", "1", [NewEvent(event=Plain(n=1)), NewEvent(event=Odd())], expected=0
    )
    await _settle(app_conn)
    errors = []
    for reader in ("columns", "text"):
        store = EventStore(EventCodec([Plain]), page_reader=reader)  # type: ignore[arg-type]
        with pytest.raises(Exception) as exc:
            await store.read_all(app_conn, limit=10)
        errors.append((type(exc.value), str(exc.value)))
    assert errors[0] == errors[1]


def test_payloads_decode_in_one_call_of_one_type_or_many() -> None:
    codec = EventCodec([Plain, Empty, OldV2], {("test.old", 1): lambda p: {"title": p["name"]}})
    one = codec.decode_payloads(["test.plain"] * 3, [1, 1, 1], b'{"n":1}\x1f{"n":2}\x1f{"n":3}')
    assert one == [Plain(n=1), Plain(n=2), Plain(n=3)]
    mixed = codec.decode_payloads(
        ["test.plain", "test.empty", "test.old", "test.old"],
        [1, 1, 1, 2],
        b'{"n":1}\x1f{}\x1f{"name":"v1"}\x1f{"title":"v2"}',
    )
    assert mixed == [Plain(n=1), Empty(), OldV2(title="v1"), OldV2(title="v2")]
    # Stored at an older version, all of one type: upcast one by one.
    assert codec.decode_payloads(["test.old"], [1], b'{"name":"a"}') == [OldV2(title="a")]
    with pytest.raises(msgspec.ValidationError):
        codec.decode_payloads(["test.plain", "test.plain"], [1, 1], b'{"n":1}\x1f{"n":"x"}')
    with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)):
        codec.decode_payloads(["test.gone"], [1], b"{}")
    assert OldV1(name="x") != OldV2(title="x")
