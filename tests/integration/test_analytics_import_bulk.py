"""`lufy events import` in bulk: chunks decoded and checked in a worker thread while the
previous chunk is written, rows formatted for COPY by hand, listener ids sealed once per
listener and month. Each bad line is still named by its number, nothing else is lost or
written twice, and what is stored is what the per-event path stored."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from lufy.analytics import importer
from lufy.analytics.importer import import_lines
from lufy.analytics.ingest import Ingestor
from lufy.bootstrap import Container
from lufy.eventstore import bulk, postgres
from lufy.privacy.sealing import Keyring
from lufy.testing.analytics import insert_artist, insert_track

_STORED = (
    "SELECT event_id, stream_id, type, data, metadata, occurred_at FROM lufy.events "
    "WHERE stream_type = 'analytics' ORDER BY global_position"
)


@pytest.fixture
async def track(admin_conn: psycopg.AsyncConnection[Any]) -> uuid.UUID:
    return await insert_track(admin_conn, await insert_artist(admin_conn))


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 lines, so that a dozen lines make several chunks in flight."""
    monkeypatch.setattr(importer, "BATCH", 4)


def _event(track: uuid.UUID, n: int, **fields: Any) -> dict[str, Any]:
    at = datetime(2026, 1, 15, 12, 0, tzinfo=UTC) + timedelta(minutes=n)
    return {
        "event_id": str(uuid.uuid4()),
        "type": "playback.started",
        "occurred_at": at.isoformat(),
        "session_id": f"s-{n}",
        "anonymous_id": f"anon-{n % 3}",
        "track_id": str(track),
        "listened_ms": 0,
        **fields,
    }


async def _stored(admin_conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    cur = await admin_conn.execute(_STORED)
    return await cur.fetchall()


@pytest.mark.usefixtures("small_chunks")
async def test_bad_lines_mid_chunk_are_named_and_the_rest_of_each_chunk_is_imported_once(
    container: Container, admin_conn: psycopg.AsyncConnection[Any], track: uuid.UUID
) -> None:
    good = [_event(track, n) for n in range(10)]
    lines = [json.dumps(e) for e in good[:5]]
    lines += [
        "{broken",  # line 6: not JSON
        json.dumps(_event(track, 90, type="playback.teleported")),  # 7: fails a check
        json.dumps(_event(track, 91, listened_ms="long")),  # 8: wrong type
        "",  # 9: blank, skipped
        json.dumps(_event(track, 92, track_id=str(uuid.uuid4()))),  # 10: unknown track
    ]
    lines += [json.dumps(e) for e in good[5:]]
    ingestor = Ingestor(container.db, container.store, sample_rate=1.0)

    report = await import_lines(ingestor, io.StringIO("\n".join(lines) + "\n"))

    assert report.lines == 14
    assert report.accepted == 10
    assert report.duplicates == 0
    assert [n for n, _ in report.rejected] == [6, 7, 8, 10]
    reasons = dict(report.rejected)
    assert reasons[6].startswith("not JSON: ")
    assert reasons[7] == "type: unknown event type 'playback.teleported'"
    assert reasons[8].startswith("listened_ms: Expected `int | null`, got `str`")
    assert reasons[10] == "unknown track"
    stored = [str(row[0]) for row in await _stored(admin_conn)]
    # Each once (a chunk is written in parts by session, so only a session's order is kept).
    assert sorted(stored) == sorted(e["event_id"] for e in good)


@pytest.mark.usefixtures("small_chunks")
async def test_a_reimport_and_repeated_ids_within_and_across_chunks_write_nothing_twice(
    container: Container, admin_conn: psycopg.AsyncConnection[Any], track: uuid.UUID
) -> None:
    events = [_event(track, n) for n in range(9)]
    # The first event again in its own chunk (line 3) and in the next chunk (line 6).
    lines = [json.dumps(e) for e in events]
    lines.insert(2, lines[0])
    lines.insert(5, lines[0])
    # The second event's id again in another session (chunks are written in two parts, by
    # session): still one row.
    lines.insert(3, json.dumps({**events[1], "session_id": "elsewhere"}))
    text = "\n".join(lines) + "\n"
    ingestor = Ingestor(container.db, container.store, sample_rate=1.0)

    first = await import_lines(ingestor, io.StringIO(text))
    assert (first.accepted, first.duplicates, first.rejected_count) == (9, 3, 0)
    before = await _stored(admin_conn)
    again = await import_lines(
        Ingestor(container.db, container.store, sample_rate=1.0), io.BytesIO(text.encode())
    )
    assert (again.accepted, again.duplicates, again.rejected_count) == (0, 12, 0)
    assert await _stored(admin_conn) == before
    assert sorted(str(row[0]) for row in before) == sorted(e["event_id"] for e in events)


async def test_text_that_copy_gives_a_meaning_to_is_stored_unchanged(
    container: Container, admin_conn: psycopg.AsyncConnection[Any], track: uuid.UUID
) -> None:
    awkward = 'tab\there, newline\nthere, cr\r, backslash \\ and \\N, quote ", é, 🎵'
    event = _event(
        track,
        1,
        session_id=awkward,
        source="a\\b",
        properties={"path": "C:\\new\\table", "text": awkward, "nested": [{"\\": "\t"}]},
    )
    ingestor = Ingestor(container.db, container.store, sample_rate=1.0)

    report = await import_lines(ingestor, io.StringIO(json.dumps(event) + "\n"))

    assert report.accepted == 1, report.rejected
    ((event_id, stream_id, type_, data, metadata, occurred_at),) = await _stored(admin_conn)
    assert str(event_id) == event["event_id"]
    assert stream_id == awkward
    assert type_ == "playback.started"
    assert data["session_id"] == awkward
    assert data["source"] == "a\\b"
    assert data["properties"] == event["properties"]
    assert data["imported"] is True
    assert metadata == {"weight": 1.0}
    assert occurred_at == datetime.fromisoformat(event["occurred_at"])


@pytest.mark.usefixtures("small_chunks")
async def test_listener_ids_sealed_once_per_listener_and_month_open_to_the_raw_ids(
    container: Container, admin_conn: psycopg.AsyncConnection[Any], track: uuid.UUID
) -> None:
    person = uuid.uuid4()
    events = [
        # The same anonymous listener over three chunks: five days of January, then February.
        *(_event(track, n * 1440, anonymous_id="anon-x") for n in range(5)),
        *(_event(track, 40 * 1440 + n, anonymous_id="anon-x") for n in range(2)),
        # A signed-in listener with an anonymous id (the person's key is read in chunk 3).
        *(_event(track, n, listener_id=str(person), anonymous_id="anon-p") for n in range(3)),
        _event(track, 5 * 1440, anonymous_id="anon-x"),
    ]
    ingestor = Ingestor(container.db, container.store, sample_rate=1.0)

    report = await import_lines(ingestor, io.StringIO("\n".join(map(json.dumps, events)) + "\n"))

    assert report.accepted == len(events), report.rejected
    stored = {str(row[0]): row[3] for row in await _stored(admin_conn)}
    async with container.db.transaction(role="system") as conn:
        for e in events:
            data = stored[e["event_id"]]
            assert "anon-" not in json.dumps(data)
            assert await Keyring().open(conn, data["anonymous_id"]) == e["anonymous_id"]
            if "listener_id" in e:
                assert await Keyring().open(conn, data["listener_id"]) == str(person)
            else:
                assert "listener_id" not in data
    sealed: dict[str, set[str]] = {}
    for e in events:
        if e["anonymous_id"] == "anon-x":
            sealed.setdefault(e["occurred_at"][:7], set()).add(
                stored[e["event_id"]]["anonymous_id"]
            )
    # One sealed text per listener and month, reused across chunks (new keys read meanwhile
    # drop nothing); the other month's is another.
    assert sorted(sealed) == ["2026-01", "2026-02"]
    assert [len(texts) for texts in sealed.values()] == [1, 1]


@pytest.mark.usefixtures("small_chunks")
async def test_a_sessions_events_keep_their_file_order_in_the_log(
    container: Container, admin_conn: psycopg.AsyncConnection[Any], track: uuid.UUID
) -> None:
    types = ("playback.started", "playback.progress", "playback.completed")
    events = [
        _event(track, 10 * s + k, session_id=f"s-{s}", type=t)
        for s in range(8)
        for k, t in enumerate(types)
    ]
    ingestor = Ingestor(container.db, container.store, sample_rate=1.0)

    report = await import_lines(ingestor, io.StringIO("\n".join(map(json.dumps, events)) + "\n"))

    assert report.accepted == len(events), report.rejected
    by_session: dict[str, list[str]] = {}
    for _, stream_id, type_, *_ in await _stored(admin_conn):
        by_session.setdefault(stream_id, []).append(type_)
    assert by_session == {f"s-{s}": list(types) for s in range(8)}


@pytest.mark.usefixtures("small_chunks")
async def test_ids_already_in_the_log_found_by_the_unique_index_are_duplicates_written_once(
    container: Container,
    admin_conn: psycopg.AsyncConnection[Any],
    track: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunk is copied without looking its ids up first while the import has met no id the
    log holds: the unique index rejects the chunk that has one, which is then written again
    after the lookup, and every later chunk is looked up first."""
    tries: list[tuple[bool, int]] = []
    write_fresh = bulk.write_fresh

    async def spy(conn: Any, batch: bulk.BulkRows, *, notify_in_tx: bool) -> bulk.BulkResult:
        result = await write_fresh(conn, batch, notify_in_tx=notify_in_tx)
        tries.append((batch.check_first, len(result.duplicates)))
        return result

    monkeypatch.setattr(postgres, "write_fresh", spy)
    monkeypatch.setattr(importer, "WRITERS", 1)
    # Times in other zones and with microseconds: the same instants are stored.
    zones = [timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3)), UTC]
    events = [
        {
            **_event(track, n),
            "occurred_at": (
                datetime(2026, 1, 15, 12, 0, 0, 123456 * (n % 2), tzinfo=UTC) + timedelta(hours=n)
            )
            .astimezone(zones[n % 3])
            .isoformat(),
        }
        for n in range(12)
    ]
    ingestor = Ingestor(container.db, container.store, sample_rate=1.0)
    early = await import_lines(ingestor, io.StringIO(json.dumps(events[5]) + "\n"))
    assert (early.accepted, early.duplicates) == (1, 0)
    tries.clear()

    # Chunks of 4: lines 1-4 new, 5-8 hold the event already imported, 9-12 new.
    report = await import_lines(ingestor, io.StringIO("\n".join(map(json.dumps, events)) + "\n"))

    assert (report.accepted, report.duplicates, report.rejected_count) == (11, 1, 0)
    assert tries == [(False, 0), (False, 1), (True, 0)]
    stored = await _stored(admin_conn)
    assert sorted(str(row[0]) for row in stored) == sorted(e["event_id"] for e in events)
    at = {str(row[0]): row[5] for row in stored}
    for e in events:
        assert at[e["event_id"]] == datetime.fromisoformat(e["occurred_at"])
