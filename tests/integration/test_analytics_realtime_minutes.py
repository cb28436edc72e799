"""Streams per minute (`session_minutes`, what realtime reads) equal a recompute from scratch.

The projection keeps them range by range from each changed session before and after. Here
sessions of the last 22 hours and of more than a day ago, two weights, arrive in small batches;
a third get a late `playback.started` that moves them to the minute before (they straddle a
minute boundary by construction), some cross 30 s later (become streams). Afterwards every row
must equal the stored streams grouped per artist and minute, and no minute older than a day is
kept.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from lufy.testing.analytics import insert_artist, insert_track
from tests.integration.test_analytics_block_maintenance import feed
from tests.integration.test_analytics_listener_bitmaps import event

STREAMS = "SELECT started_at, weight, artist_id FROM playback_sessions WHERE is_stream"
STORED = "SELECT scope, owner, minute, artist_id, streams FROM session_minutes"


def generate(tracks: list[Any], now: datetime) -> tuple[list[tuple[float, dict]], ...]:
    rng = random.Random(1717)
    early: list[tuple[float, dict]] = []
    late: list[tuple[float, dict]] = []
    for n in range(1200):
        listener, track = rng.randrange(300), tracks[n % len(tracks)]
        rate = 0.5 if listener % 4 == 0 else 1.0
        hours = rng.uniform(0.1, 22) if n % 5 else rng.uniform(26, 30)  # a fifth over a day ago
        minute = (now - timedelta(hours=hours)).replace(second=0, microsecond=0)
        first = minute + timedelta(seconds=rng.randrange(1, 50))
        ms = rng.choice([12_000, 25_000, 45_000, 90_000])
        kind = rng.choice(["playback.progress", "playback.completed", "playback.skipped"])
        early.append((rate, event(kind, f"m-{n}", listener, track, first, ms)))
        # Late: a start in the minute before (moves the session), or crossing 30 s.
        moves = [("playback.started", minute - timedelta(seconds=rng.randrange(1, 50)), 0)]
        if ms < 30_000:
            moves.append(("playback.progress", first + timedelta(seconds=40), 35_000))
        for what, at, listened in moves:
            if rng.random() < 0.4:
                late.append((rate, event(what, f"m-{n}", listener, track, at, listened)))
    rng.shuffle(late)
    return early, late


def expected(streams: list[tuple[Any, ...]], now: datetime) -> dict[tuple[Any, ...], float]:
    """Per (scope, owner, minute): the streams of the last day, in plain Python."""
    out: dict[tuple[Any, ...], float] = defaultdict(float)
    for started, weight, artist in streams:
        minute = started.replace(second=0, microsecond=0)
        if minute < now - timedelta(days=1):
            continue
        out[("a", artist, minute)] += weight
        out[("p", uuid.UUID(int=0), minute)] += weight
    return dict(out)


async def test_minutes_equal_a_recompute_after_late_and_moving_sessions(
    db, store, admin_conn
) -> None:
    artists = [await insert_artist(admin_conn) for _ in range(2)]
    tracks = [await insert_track(admin_conn, a) for a in artists for _ in range(2)]
    now = datetime.now(UTC).replace(microsecond=0)
    early, late = generate(tracks, now)
    await feed(db, store, early, now)
    await feed(db, store, late, now)

    async with db.transaction(role="system") as conn:
        streams = await (await conn.execute(STREAMS)).fetchall()
        rows = await (await conn.execute(STORED)).fetchall()
        moved = await conn.execute(
            "SELECT count(*) FROM playback_sessions WHERE start_event_at IS NOT NULL AND is_stream"
        )
        assert (await moved.fetchone())[0] > 100
    old = [s for s in streams if s[0] < now - timedelta(days=1)]
    assert len(old) > 50  # streams over a day ago exist, and have no minutes
    want = expected(streams, now)
    assert len(want) > 1000
    got = {(scope, owner, minute): streams for scope, owner, minute, _, streams in rows if streams}
    assert got == want
    for scope, owner, _, artist, _ in rows:
        assert artist == (owner if scope == "a" else None)
