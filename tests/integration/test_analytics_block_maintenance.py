"""The per-block tables the projection maintains range by range equal a recompute from scratch.

The listener bitmaps and session counters are kept incrementally (set-based, per range of the
log): each changed session's blocks before and after. Here sessions over three days, two
weights, several countries and devices, arrive in small batches; a third of them get a late
`playback.started` that moves them across quarter-hours, hours and UTC days, some cross 30 s
(become streams) later, and a listener often has several sessions in one block. Afterwards every
row of `listener_bitmaps` (its listeners, their number, its streams) and of `session_blocks`
must equal what the stored sessions give when grouped from scratch, and no bitmap row is empty.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pyroaring import BitMap

from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.migrate import migrate
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track
from tests.conftest import admin_url, app_url
from tests.integration.test_analytics_listener_bitmaps import event

STREAMS = """
SELECT s.started_at, l.id, s.weight, s.track_id, s.artist_id, s.country, s.device, s.source
FROM playback_sessions s JOIN listener_ids l ON l.listener_key = s.listener_key
WHERE s.is_stream
"""
STORED_BITMAPS = """
SELECT scope, owner, dim, key, level, bucket, weight, bitmap, listeners, streams
FROM listener_bitmaps
"""
# Every session's counters from scratch, by plain epoch arithmetic (not the projection's SQL).
EXPECTED_COUNTERS = """
SELECT o.scope, o.owner, l.level,
       to_timestamp(floor((extract(epoch FROM s.started_at) - l.shift) / l.secs) * l.secs
                    + l.shift),
       sum(CASE WHEN s.is_stream THEN s.weight ELSE 0 END), sum(s.listened_ms * s.weight),
       sum(s.weight), sum(CASE WHEN s.completed THEN s.weight ELSE 0 END),
       sum(CASE WHEN s.skipped THEN s.weight ELSE 0 END)
FROM playback_sessions s
CROSS JOIN (VALUES ('q', 900, 0), ('o', 3600, 1800), ('h', 3600, 0), ('s', 21600, 0),
                   ('d', 86400, 0)) AS l(level, secs, shift)
CROSS JOIN LATERAL (VALUES ('t', s.track_id), ('a', s.artist_id),
                           ('p', '00000000-0000-0000-0000-000000000000'::uuid)) AS o(scope, owner)
WHERE l.level <> 'o' OR extract(epoch FROM s.started_at) % 86400 BETWEEN 1800 AND 84599.999999
GROUP BY 1, 2, 3, 4
"""
STORED_COUNTERS = """
SELECT scope, owner, level, bucket, streams, listen_ms, starts, completions, skips
FROM session_blocks
WHERE streams <> 0 OR listen_ms <> 0 OR starts <> 0 OR completions <> 0 OR skips <> 0
"""


# Levels (name, length, start past the UTC epoch's multiples): quarter-hours, hours from half
# past, hours, six hours, days.
LEVELS = (("q", 900, 0), ("o", 3600, 1800), ("h", 3600, 0), ("s", 21600, 0), ("d", 86400, 0))


def expected_bitmaps(streams: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], Any]:
    """Every stream session's bitmap rows from scratch, in plain Python: (scope, owner, dim,
    key, level, bucket, weight) -> (listener ids, streams)."""
    out: dict[tuple[Any, ...], Any] = defaultdict(lambda: (set(), 0.0))
    for started, listener, weight, track, artist, *values in streams:
        epoch = int(started.timestamp())
        for level, secs, shift in LEVELS:
            if level == "o" and not 1800 <= epoch % 86400 < 84600:
                continue  # no hour from half past starts at 23:30 (it would end the next day)
            bucket = datetime.fromtimestamp(epoch - (epoch - shift) % secs, UTC)
            keys = [("t", track, "", "")]
            for scope, owner in (("a", artist), ("p", uuid.UUID(int=0))):
                keys.append((scope, owner, "", ""))
                if level == "o":
                    continue  # hours from half past: rows without dimension only
                for dim, value in zip(("country", "device", "source"), values, strict=True):
                    keys.append((scope, owner, dim, "unknown" if value is None else value))
            for scope, owner, dim, key in keys:
                row = (scope, owner, dim, key, level, bucket, weight)
                ids, total = out[row]
                out[row] = (ids | {listener}, total + weight)
    return dict(out)


def generate(tracks: list[Any], now: datetime) -> tuple[list[tuple[float, dict]], ...]:
    rng = random.Random(350)
    quarter = now.replace(minute=now.minute - now.minute % 15)  # a session straddles a boundary
    early: list[tuple[float, dict]] = []
    late: list[tuple[float, dict]] = []
    for n in range(2500):
        listener = rng.randrange(400)  # few listeners: several sessions share blocks
        rate = 0.5 if listener % 4 == 0 else 1.0
        track = tracks[n % len(tracks)]
        sid = f"s-{n}"
        base = quarter - timedelta(hours=rng.randrange(1, 70), minutes=rng.choice([0, 15, 30]))
        start = base - timedelta(seconds=rng.randrange(1, 90))
        first = base + timedelta(seconds=rng.randrange(1, 60))
        ms = rng.choice([12_000, 25_000, 45_000, 90_000])
        kind = rng.choice(["playback.progress", "playback.completed", "playback.skipped"])
        early.append((rate, {**event(kind, sid, listener, track, first, ms), "device": "tv"}))
        if rng.random() < 0.35:
            late.append((rate, event("playback.started", sid, listener, track, start, 0)))
        if ms < 30_000 and rng.random() < 0.5:
            later = first + timedelta(seconds=40)
            late.append((rate, event("playback.progress", sid, listener, track, later, 35_000)))
    rng.shuffle(late)
    return early, late


async def feed(db, store, items: list[tuple[float, dict]], now: datetime) -> None:
    """Ingest `items` ((sample rate, event)) 400 at a time, the projector catching up in ranges
    of 300 events after each."""
    projector = LocalProjector(db, store, batch=300)
    for rate in (1.0, 0.5):
        ingestor = Ingestor(db, store, sample_rate=rate, clock=lambda: now)
        events = [e for r, e in items if r == rate]
        for i in range(0, len(events), 400):
            chunk = events[i : i + 400]
            await ingestor.ingest(chunk, IngestContext(historical=True), event_type=ImportedEvent)
            await projector.run()


async def test_bitmaps_and_counters_equal_a_recompute_after_late_and_moving_sessions(
    db, store, admin_conn
) -> None:
    artist = await insert_artist(admin_conn)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    early, late = generate([await insert_track(admin_conn, artist) for _ in range(3)], now)
    await feed(db, store, early, now)
    await feed(db, store, late, now)

    async with db.transaction(role="system") as conn:
        expected = expected_bitmaps(await (await conn.execute(STREAMS)).fetchall())
        stored: dict[tuple[Any, ...], tuple[set[int], float]] = {}
        for r in await (await conn.execute(STORED_BITMAPS)).fetchall():
            ids = BitMap.deserialize(bytes(r[7]))
            assert ids, r[:7]  # an empty row is deleted
            assert r[8] == len(ids), r[:7]
            stored[tuple(r[:7])] = (set(ids), float(r[9]))
        want_counters = await (await conn.execute(EXPECTED_COUNTERS)).fetchall()
        got_counters = await (await conn.execute(STORED_COUNTERS)).fetchall()
        # Every late start lies in the quarter-hour before its session's other events (they
        # straddle a boundary by construction), so each of these moved blocks.
        moved = await conn.execute(
            "SELECT count(*) FROM playback_sessions WHERE start_event_at IS NOT NULL AND is_stream"
        )
        assert (await moved.fetchone())[0] > 300

    assert len(expected) > 1000
    # Hours from half past, and streams in the half hour before midnight that has none.
    assert sum(1 for row in expected if row[4] == "o") > 100
    assert any(row[4] == "q" and row[5].hour == 23 and row[5].minute >= 30 for row in expected)
    assert any(row[4] == "q" and row[5].hour == 0 and row[5].minute < 30 for row in expected)
    assert stored == expected
    by_key: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in got_counters:
        by_key[tuple(r[:4])] = [float(v) for v in r[4:]]
    assert by_key == {tuple(r[:4]): [float(v) for v in r[4:]] for r in want_counters}


OFFSET_BITMAPS = """
SELECT scope, owner, dim, key, bucket, weight, artist_id, streams, listeners, bitmap
FROM lufy.listener_bitmaps WHERE level = 'o'
"""
OFFSET_COUNTERS = "SELECT * FROM lufy.session_blocks WHERE level = 'o'"


async def test_migrate_derives_hours_from_half_past_as_the_projection_writes_them(
    db, store, admin_conn, dbname
) -> None:
    """Tables of a version without level 'o' (hours from half past) get its rows from `lufy
    migrate`, derived from their quarter-hours: the same rows the projection writes."""
    artist = await insert_artist(admin_conn)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    early, late = generate([await insert_track(admin_conn, artist) for _ in range(2)], now)
    await feed(db, store, early + late, now)

    async def offset_rows() -> tuple[dict[tuple[Any, ...], tuple[Any, ...]], list[Any]]:
        bitmaps = {
            tuple(r[:6]): (r[6], float(r[7]), r[8], set(BitMap.deserialize(bytes(r[9]))))
            for r in await (await admin_conn.execute(OFFSET_BITMAPS)).fetchall()
        }
        counters = sorted(await (await admin_conn.execute(OFFSET_COUNTERS)).fetchall())
        return bitmaps, counters

    written = await offset_rows()
    assert len(written[0]) > 100
    assert len(written[1]) > 100
    await admin_conn.execute("DELETE FROM lufy.listener_bitmaps WHERE level = 'o'")
    await admin_conn.execute("DELETE FROM lufy.session_blocks WHERE level = 'o'")
    await asyncio.to_thread(migrate, admin_url(dbname), app_url(dbname))
    assert await offset_rows() == written
    # Once there, a later migration leaves them alone.
    await asyncio.to_thread(migrate, admin_url(dbname), app_url(dbname))
    assert await offset_rows() == written
