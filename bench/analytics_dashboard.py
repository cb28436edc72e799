"""Dashboard latency does not grow with history: median latency of `overview` and `timeseries`
(28 days, daily) for one artist with a long history, as a ratio to the same with 100k events
(target <= 1.5), measured in the same run.

    .venv/bin/python bench/analytics_dashboard.py [--events 100000] [--history 9900000]

1. A fresh database; 40 artists with 10 tracks each. `--events` analytics events of the last
   28 days (about 5 per playback session, with likes and follows) go through the import path
   (Ingestor, COPY into lufy.events) and the analytics projection; the latencies are measured.
2. History is added: the read-model rows that `--history` more events (about 5 per session)
   spread over the two years before would produce, generated directly with SQL
   generate_series (sessions, then their 15-minute rollups), because pushing 10M events through
   HTTP or the projector takes hours on this 2-core machine. lufy.events keeps the 100k events:
   the dashboard never reads the log, only the read models, which now hold the 10M-event
   history. The latencies are measured again. (The generated history has no listener bitmaps:
   those are read per block of the requested range only, so history cannot change their cost;
   bench/analytics_scale.py measures them at scale.)
Latency is the time of one `Dashboard` call (in process, real PostgreSQL, the artist's RLS
context), median of `--repeat` calls after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import psycopg
from benchkit import drop_database

from lufy.analytics.dashboard import Dashboard, Query, Scope
from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.db import Database
from lufy.eventstore import EventStore
from lufy.migrate import migrate
from lufy.testing.analytics import LocalProjector

ADMIN_BASE = os.environ.get(
    "LUFY_TEST_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)
EVENTS_PER_SESSION = 5


def db_url(dbname: str, user: str | None = None) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = base.netloc if user is None else f"{user}:{user}@{base.hostname}:{base.port or 5432}"
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


def recent_events(n: int, tracks: list[tuple[str, str]], now: datetime) -> list[dict]:
    rng = random.Random(1)
    out: list[dict] = []
    session = 0
    while len(out) < n:
        session += 1
        track, artist = rng.choice(tracks)
        start = now - timedelta(seconds=rng.uniform(60, 28 * 86400))
        base = {
            "session_id": f"s-{session}",
            "anonymous_id": f"l-{rng.randrange(20_000)}",
            "track_id": track,
            "country": rng.choice(["SE", "US", "IN", "BR"]),
            "device": rng.choice(["mobile", "desktop"]),
            "source": "playlist",
        }
        listened = rng.choice([10_000, 45_000, 120_000, 200_000])
        for k in range(EVENTS_PER_SESSION - 1):
            ms = listened * k // (EVENTS_PER_SESSION - 2)
            out.append(
                {
                    **base,
                    "event_id": str(uuid.uuid4()),
                    "type": "playback.started" if k == 0 else "playback.progress",
                    "occurred_at": (start + timedelta(milliseconds=ms)).isoformat(),
                    "listened_ms": ms,
                }
            )
        kind = rng.choice(["track.liked", "artist.followed", "playback.skipped"])
        extra = {"artist_id": artist} if kind == "artist.followed" else {}
        out.append(
            {
                **base,
                **extra,
                "event_id": str(uuid.uuid4()),
                "type": kind,
                "occurred_at": (start + timedelta(milliseconds=listened)).isoformat(),
                "listened_ms": listened,
            }
        )
    return out[:n]


HISTORY_SQL = """
INSERT INTO lufy.playback_sessions (session_id, track_id, artist_id, listener_key,
    start_event_at, first_event_at, listened_ms, completed, skipped, source, country, device,
    weight, imported, verified)
SELECT 'h-' || g, t.id, t.artist_id, md5((g %% 200000)::text),
       %(from)s::timestamptz + (g::float8 / %(sessions)s) * %(span)s::interval,
       %(from)s::timestamptz + (g::float8 / %(sessions)s) * %(span)s::interval,
       (g * 7919) %% 240000, (g %% 5) = 0, (g %% 4) = 0, 'playlist',
       (ARRAY['SE', 'US', 'IN', 'BR'])[1 + g %% 4], (ARRAY['mobile', 'desktop'])[1 + g %% 2], 1,
       true, true
FROM generate_series(1::bigint, %(sessions)s) AS g
JOIN LATERAL (SELECT id, artist_id FROM bench_tracks WHERE n = g %% %(tracks)s) t ON true
"""

ROLLUP_SQL = """
INSERT INTO lufy.track_rollup_15m (track_id, bucket, artist_id, streams, listen_ms, starts,
                                   completions, skips)
SELECT track_id,
       to_timestamp(floor(extract(epoch FROM started_at) / 900) * 900) AS bucket, artist_id,
       coalesce(sum(weight) FILTER (WHERE is_stream), 0), sum(listened_ms * weight), sum(weight),
       coalesce(sum(weight) FILTER (WHERE completed), 0),
       coalesce(sum(weight) FILTER (WHERE skipped), 0)
FROM lufy.playback_sessions
WHERE session_id LIKE 'h-%%'
GROUP BY 1, 2, 3
ON CONFLICT (track_id, bucket) DO NOTHING
"""


async def measure(dashboard: Dashboard, scope: Scope, repeat: int) -> tuple[float, float]:
    query = Query(range="28d", tz="Europe/Stockholm")
    timings: dict[str, list[float]] = {"overview": [], "timeseries": []}
    for i in range(repeat + 3):
        for name in timings:
            started = time.perf_counter()
            if name == "overview":
                await dashboard.overview(scope, query)
            else:
                await dashboard.timeseries_points(
                    scope, query, metric="streams", granularity="day", track_id=None
                )
            if i >= 3:
                timings[name].append(time.perf_counter() - started)
    return statistics.median(timings["overview"]), statistics.median(timings["timeseries"])


async def run(args: argparse.Namespace) -> None:
    dbname = f"lufy_bench_dash_{uuid.uuid4().hex[:8]}"
    migrate(db_url(dbname), db_url(dbname, "lufy_app"))
    admin = db_url(dbname)
    tracks: list[tuple[str, str]] = []
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_tracks (n int PRIMARY KEY, id uuid, artist_id uuid)")
        for _ in range(40):
            artist = uuid.uuid4()
            conn.execute(
                "INSERT INTO lufy.users (id, email, display_name, role, email_verified) "
                "VALUES (%s, %s, 'Bench', 'artist', true)",
                [artist, f"{artist.hex}@bench.test"],
            )
            for t in range(10):
                track = uuid.uuid4()
                conn.execute(
                    "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, "
                    "published) VALUES (%s, %s, %s, 'ready', 240000, true)",
                    [track, artist, f"T{t}"],
                )
                conn.execute(
                    "INSERT INTO bench_tracks VALUES (%s, %s, %s)", [len(tracks), track, artist]
                )
                tracks.append((str(track), str(artist)))
    target = uuid.UUID(tracks[0][1])
    db = Database(db_url(dbname, "lufy_app"), max_size=4)
    await db.open(wait=True)
    try:
        now = datetime.now(UTC)
        events = recent_events(args.events, tracks, now)
        ingestor = Ingestor(db, EventStore(), sample_rate=1.0)
        t0 = time.perf_counter()
        for i in range(0, len(events), 5000):
            await ingestor.ingest(
                events[i : i + 5000], IngestContext(historical=True), event_type=ImportedEvent
            )
        applied = await LocalProjector(db, EventStore(), batch=5000).run()
        print(
            f"{len(events):,} events imported and projected ({applied:,}) in "
            f"{time.perf_counter() - t0:.0f}s",
            flush=True,
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ANALYZE")
        dashboard = Dashboard(db)
        scope = Scope(target, "artist", target)
        small = await measure(dashboard, scope, args.repeat)
        print(
            f"{args.events:,} events: overview {small[0] * 1000:.1f} ms, "
            f"timeseries {small[1] * 1000:.1f} ms",
            flush=True,
        )

        sessions = args.history // EVENTS_PER_SESSION
        t0 = time.perf_counter()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                HISTORY_SQL,
                {
                    "from": now - timedelta(days=28 + 730),
                    "span": "730 days",
                    "sessions": sessions,
                    "tracks": len(tracks),
                },
            )
            conn.execute(ROLLUP_SQL)
            conn.execute("VACUUM ANALYZE lufy.playback_sessions")
            conn.execute("VACUUM ANALYZE lufy.track_rollup_15m")
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM lufy.playback_sessions), "
                "(SELECT count(*) FROM lufy.track_rollup_15m)"
            ).fetchone()
        print(
            f"history: {sessions:,} sessions (~{args.history:,} events), rows now "
            f"{counts[0]:,} sessions / {counts[1]:,} rollups, in {time.perf_counter() - t0:.0f}s",
            flush=True,
        )
        big = await measure(dashboard, scope, args.repeat)
        print(
            f"+{args.history:,} history: overview {big[0] * 1000:.1f} ms, "
            f"timeseries {big[1] * 1000:.1f} ms"
        )
        print(
            f"ratio with history / without: overview {big[0] / small[0]:.2f}, "
            f"timeseries {big[1] / small[1]:.2f} (target <= 1.5)"
        )
    finally:
        await db.close()
        if not args.keep:
            drop_database(ADMIN_BASE, dbname)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=9_900_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
