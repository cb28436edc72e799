"""Listener bitmaps stay exact for a big artist under late, moving and re-weighted sessions.

Thousands of listeners over three days, two sample rates (weights 1 and 2), sessions whose
`playback.started` arrives late and moves them across quarter-hours, hours and UTC days,
sessions that cross 30 s in a later batch; every listener number of the dashboard (overview,
timeseries by hour and day, tracks, breakdowns) must equal a count taken independently from the
sessions themselves, in UTC, New York and Kolkata, before and after a rebuild, read by one
dashboard whose cache of decoded bitmaps holds the rows those changes rewrite.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from lufy.analytics.dashboard import Dashboard, Query, Scope
from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.analytics.projections import AnalyticsProjection
from lufy.projections.rebuild import rebuild
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track
from tests.integration.test_analytics_oracle import close, labeller, period

ZONES = ("UTC", "America/New_York", "Asia/Kolkata")


def event(kind: str, sid: str, listener: int, track: uuid.UUID, at: datetime, ms: int) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "occurred_at": at.isoformat(),
        "session_id": sid,
        "anonymous_id": f"l-{listener}",
        "track_id": str(track),
        "listened_ms": ms,
        "country": ["SE", "US", "IN"][listener % 3],
    }


async def scan(db, artist: uuid.UUID) -> list[tuple[Any, ...]]:
    async with db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT started_at, listener_key, weight, track_id, coalesce(country, 'unknown') "
            "FROM playback_sessions WHERE is_stream AND artist_id = %s",
            [artist],
        )
        return await cur.fetchall()


def distinct(rows, start, end, label=lambda _: 0, group=lambda r: 0) -> dict[Any, float]:
    weights: dict[Any, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if start <= r[0] < end:
            key = (label(r[0]), group(r))
            weights[key][r[1]] = max(weights[key].get(r[1], 0), r[2])
    return {k: sum(v.values()) for k, v in weights.items()}


async def check(db, artist: uuid.UUID, now: datetime, dashboard: Dashboard) -> int:
    rows = await scan(db, artist)
    scope = Scope(artist, "artist", artist)
    checked = 0
    for zone in ZONES:
        instants = (
            (now - timedelta(days=2, minutes=7)).isoformat(),
            (now - timedelta(hours=5, minutes=-3)).isoformat(),
        )
        for rng in ("7d", "24h", instants):
            start, end, pstart, pend = period(rng, zone, now)
            q = (
                Query(from_=rng[0], to=rng[1], tz=zone)
                if isinstance(rng, tuple)
                else Query(range=rng, tz=zone)
            )
            overview = await dashboard.overview(scope, q)
            assert close(overview.listeners, distinct(rows, start, end).get((0, 0), 0))
            assert close(overview.previous.listeners, distinct(rows, pstart, pend).get((0, 0), 0))
            checked += 2
            for grain in ("hour", "day"):
                label = labeller(grain, zone)
                want = distinct(rows, start, end, label)
                points = (
                    await dashboard.timeseries_points(
                        scope, q, metric="listeners", granularity=grain, track_id=None
                    )
                ).points
                for p in points:
                    assert close(p.value, want.get((p.t, 0), 0)), (zone, rng, grain, p)
                    checked += 1
            tracks = (await dashboard.tracks(scope, q, sort="listeners", limit=10)).rows
            want = distinct(rows, start, end, group=lambda r: r[3])
            for row in tracks:
                assert close(row.listeners, want.get((0, row.track_id), 0)), (zone, rng, row)
                checked += 1
            breakdown = (await dashboard.breakdown(scope, q, dimension="country")).rows
            want = distinct(rows, start, end, group=lambda r: r[4])
            assert {r.key for r in breakdown} == {k for _, k in want}
            for r in breakdown:
                assert close(r.listeners, want[(0, r.key)]), (zone, rng, r)
                streams = sum(s[2] for s in rows if start <= s[0] < end and s[4] == r.key)
                assert close(r.streams, streams)
                checked += 2
    return checked


async def test_listener_bitmaps_of_a_big_artist_match_a_scan_through_late_and_moving_sessions(
    db, store, admin_conn, settings
) -> None:
    rng = random.Random(17)
    artist = await insert_artist(admin_conn)
    tracks = [await insert_track(admin_conn, artist) for _ in range(2)]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    ingestors = {
        rate: Ingestor(db, store, sample_rate=rate, clock=lambda: now) for rate in (1.0, 0.5)
    }
    projector = LocalProjector(db, store, batch=1000)
    # One dashboard throughout: its cache of decoded bitmaps holds the rows of each check when
    # late events and the rebuild change them.
    dashboard = Dashboard(db, clock=lambda: now)
    early: list[tuple[float, dict]] = []
    late: list[tuple[float, dict]] = []
    for n in range(4000):
        listener = rng.randrange(2500)
        rate = 0.5 if listener % 4 == 0 else 1.0  # two weights among the listeners
        track = tracks[n % 2]
        sid = f"s-{n}"
        # Near quarter, hour and UTC-day boundaries, so a late start moves the session across.
        base = now - timedelta(hours=rng.randrange(1, 70), minutes=rng.choice([0, 15, 30, 45]))
        start = base - timedelta(seconds=rng.randrange(1, 90))
        first = base + timedelta(seconds=rng.randrange(1, 60))
        ms = rng.choice([12_000, 25_000, 45_000, 90_000])
        early.append((rate, event("playback.progress", sid, listener, track, first, ms)))
        if rng.random() < 0.6:
            late.append((rate, event("playback.started", sid, listener, track, start, 0)))
        if ms < 30_000 and rng.random() < 0.5:  # becomes a stream in a later batch
            later = first + timedelta(seconds=40)
            late.append((rate, event("playback.progress", sid, listener, track, later, 35_000)))

    async def send(items: list[tuple[float, dict]]) -> None:
        for rate, ingestor in ingestors.items():
            batch = [e for r, e in items if r == rate]
            for i in range(0, len(batch), 2000):
                await ingestor.ingest(
                    batch[i : i + 2000], IngestContext(historical=True), event_type=ImportedEvent
                )
        await projector.run()

    await send(early)
    assert await check(db, artist, now, dashboard) > 200
    rng.shuffle(late)
    await send(late)
    rows = await scan(db, artist)
    assert {r[2] for r in rows} == {1.0, 2.0}
    assert len({r[1] for r in rows}) > 1000
    assert await check(db, artist, now, dashboard) > 200

    result = await rebuild(settings.DATABASE_URL, AnalyticsProjection(), batch_size=700)
    assert result.swapped
    assert await check(db, artist, now, dashboard) > 200
