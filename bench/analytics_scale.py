"""Analytics at platform scale (issue 17): dashboard latency of a big artist against a small one.

    .venv/bin/python bench/analytics_scale.py [--sessions 1000000] [--listeners 300000]
                                              [--small 10000] [--requests 40]

1. A fresh database. A big artist with 3 tracks and `--sessions` playback sessions spread over
   the last 28 days (3 events each: started, progress, completed or skipped, so 3M events at the
   default), `--listeners` distinct listeners; a small artist with 1 track and `--small`
   sessions in the same days. The events are written into lufy.events with one set-based
   INSERT per artist (in start order, marked imported as `lufy events import` marks them), then
   the analytics projection catches up through its own code (the projector's batches); the time
   it takes is printed.
2. For each dashboard route (overview; timeseries of listeners by hour, day, week and month, of
   streams by hour and day, of listen_seconds by week, of completion_rate by month; tracks;
   breakdown by country, device and source; realtime; export.csv), range (28d, 90d, 12m) and
   zone (UTC, Asia/Kolkata): `--requests` calls from 4 concurrent tasks on a pool of 4
   connections, in process (the `Dashboard` service the routes call), as the artist (RLS).
   Printed: p50 and p99 per route for both artists and the ratio big / small of the p50s
   (targets: p50 <= 50 ms, p99 <= 250 ms, ratio <= 2), and the latency of the first call
   of each route alone (before it, the process holds no decoded bitmap of that route's rows).
   With `--platform 10000000`, 10M more events over 1,000 other artists (2 tracks each) go into
   the same log before the projection catches up (the platform side of the issue; not the
   default: at this machine's ~8k events/s the catch-up alone takes over 20 minutes).
3. In the same run, the baseline the bitmaps replace: the exact distinct-listener scan over the
   big artist's sessions for 28 days (what `overview` used to run), timed the same way.

Projection figures (bench/analytics_replay.py; `--figures` picks among refresh, rebuild,
import, routes; all by default), after the fixture is projected (`--batch` events per live
batch; with `--database NAME`, on a fixture kept by `--keep`, only import and routes):
- refresh: the analyst refresh after appending 10,000 events (target <= 0.2 s per view);
- rebuild: `lufy projections rebuild analytics` against one `INSERT … SELECT … GROUP BY`
  computing the same sessions and rollups (target >= 0.5), and the rebuild's peak RSS
  (target <= 500 MB);
- import: `lufy events import` of `--import-events` lines with `lufy projector` running,
  against raw COPY of the same rows (target >= 0.3). On a kept fixture, `--also-src DIR` runs
  the import with another checkout's code too (DIR: its src/), alternating with this one's,
  `--rounds` times: each import gets the raw COPY of its own rows, measured right after it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from analytics_replay import import_figure, rebuild_figure
from benchkit import drop_database

from lufy.analytics.dashboard import Dashboard, Query, Scope
from lufy.db import Database
from lufy.eventstore import EventStore
from lufy.migrate import migrate
from lufy.testing.analytics import LocalProjector

ADMIN_BASE = os.environ.get(
    "LUFY_TEST_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)

EVENTS_SQL = """
INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data, metadata, occurred_at)
SELECT gen_random_uuid(), 'analytics', s.sid, e.type,
       jsonb_build_object(
           'session_id', s.sid, 'listener_key', md5(%(prefix)s || s.listener),
           'track_id', s.track_id, 'artist_id', %(artist)s::uuid, 'listened_ms', e.ms,
           'source', s.source, 'country', s.country, 'device', s.device, 'imported', true),
       '{"weight": 1.0}'::jsonb, e.at
FROM (
    SELECT %(prefix)s || g AS sid, (g * 7919) %% %(listeners)s AS listener,
           (%(tracks)s::uuid[])[1 + g %% cardinality(%(tracks)s::uuid[])] AS track_id,
           (ARRAY['playlist', 'search', 'album', 'radio'])[1 + g %% 4] AS source,
           (ARRAY['SE', 'US', 'IN', 'BR', 'DE', 'FR', 'JP', 'MX', 'NG', 'GB'])[1 + (g * 31) %% 10]
               AS country,
           (ARRAY['mobile', 'desktop', 'tablet', 'tv'])[1 + (g * 17) %% 4] AS device,
           %(start)s::timestamptz + (g::float8 / %(sessions)s) * %(span)s::interval AS started,
           CASE WHEN (g * 13) %% 10 < 6 THEN 45000 + (g %% 150) * 1000 ELSE 12000 END AS ms
    FROM generate_series(1::bigint, %(sessions)s) AS g
) s
CROSS JOIN LATERAL (VALUES
    ('playback.started', s.started, 0),
    ('playback.progress', s.started + interval '10 seconds', 10000),
    (CASE WHEN s.ms > 30000 THEN 'playback.completed' ELSE 'playback.skipped' END,
     s.started + s.ms * interval '1 millisecond', s.ms)
) AS e(type, at, ms)
ORDER BY s.started, e.at
"""

# What `overview` ran before the bitmaps: exact distinct listeners by scanning sessions.
SCAN_SQL = """
SELECT sum(w) FROM (
    SELECT s.listener_key, max(s.weight) AS w FROM playback_sessions s
    WHERE s.is_stream AND s.started_at >= %(from)s AND s.started_at < %(to)s
      AND s.artist_id = %(artist)s GROUP BY 1) per_listener
"""


def db_url(dbname: str, user: str | None = None) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = base.netloc if user is None else f"{user}:{user}@{base.hostname}:{base.port or 5432}"
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


def add_artist(conn: psycopg.Connection[Any], name: str, tracks: int) -> tuple[uuid.UUID, list]:
    artist = uuid.uuid4()
    conn.execute(
        "INSERT INTO lufy.users (id, email, display_name, role, email_verified) "
        "VALUES (%s, %s, %s, 'artist', true)",
        [artist, f"{artist.hex}@bench.test", name],
    )
    ids = []
    for t in range(tracks):
        track = uuid.uuid4()
        conn.execute(
            "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published) "
            "VALUES (%s, %s, %s, 'ready', 240000, true)",
            [track, artist, f"{name} {t}"],
        )
        ids.append(track)
    return artist, ids


async def refresh_figures(
    db: Database,
    admin: str,
    artist: uuid.UUID,
    tracks: list[uuid.UUID],
    projector: LocalProjector,
    args: argparse.Namespace,
) -> None:
    """Analyst refresh after appending 10,000 events (the last hour), against the first refresh
    of the same run, which recomputes every day: what every refresh did before it was
    incremental (one query per view over all history)."""
    from lufy.analytics.refresh import refresh_views

    first = dict(await refresh_views(db))
    print("first refresh (every day): " + ", ".join(f"{v} {t:.2f}s" for v, t in first.items()))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            EVENTS_SQL,
            {
                "prefix": "n-",
                "artist": artist,
                "tracks": tracks,
                "sessions": 10_000 // 3,
                "listeners": args.listeners,
                "start": datetime.now(UTC) - timedelta(hours=1),
                "span": "50 minutes",
            },
        )
    applied = await projector.run(wait_seconds=600)
    again = dict(await refresh_views(db))
    print(
        f"refresh after appending {applied:,} events: "
        + ", ".join(f"{v} {t:.3f}s (ratio {t / first[v]:.3f})" for v, t in again.items())
        + " (target <= 0.2 s per view; ratio to the full refresh of the same run)",
        flush=True,
    )


def routes(dashboard: Dashboard) -> dict[str, Callable[[Scope, Query], Awaitable[Any]]]:
    return {
        "overview": dashboard.overview,
        **{
            f"timeseries {metric}/{grain}": (
                lambda s, q, m=metric, g=grain: dashboard.timeseries_points(
                    s, q, metric=m, granularity=g, track_id=None
                )
            )
            for metric, grain in (
                ("listeners", "hour"),
                ("listeners", "day"),
                ("listeners", "week"),
                ("listeners", "month"),
                ("streams", "hour"),
                ("streams", "day"),
                ("listen_seconds", "week"),
                ("completion_rate", "month"),
            )
        },
        "tracks": lambda s, q: dashboard.tracks(s, q, sort="streams", limit=10),
        "breakdown country": lambda s, q: dashboard.breakdown(s, q, dimension="country"),
        "breakdown device": lambda s, q: dashboard.breakdown(s, q, dimension="device"),
        "breakdown source": lambda s, q: dashboard.breakdown(s, q, dimension="source"),
        "export.csv": lambda s, q: dashboard.export_csv(
            s, q, metric=None, granularity="day", track_id=None
        ),
        "realtime": lambda s, q: dashboard.realtime(s, q.tz),
    }


async def timed(call: Callable[[], Awaitable[Any]], requests: int) -> list[float]:
    """`requests` calls from 4 concurrent tasks after one alone (the first, listed last: it is
    the one that finds no decoded bitmap of its rows in the cache); each call's latency."""
    timings: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            await call()
            timings.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await call()
    first = time.perf_counter() - t0
    await asyncio.gather(*(worker() for _ in range(4)))
    return [*timings, first]


def p(values: list[float], q: float) -> float:
    ordered = sorted(values[:-1])
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def run(args: argparse.Namespace) -> None:
    dbname = args.database or f"lufy_bench_scale_{uuid.uuid4().hex[:8]}"
    admin = db_url(dbname)
    db = Database(db_url(dbname, "lufy_app"), max_size=4)
    if args.database:  # measure again on a fixture kept by an earlier run (--keep)
        await kept_figures(admin, db, args)
        return
    migrate(db_url(dbname), db_url(dbname, "lufy_app"))
    try:
        now = datetime.now(UTC)
        start = now - timedelta(days=28)
        with psycopg.connect(admin, autocommit=True) as conn:
            big, big_tracks = add_artist(conn, "Big", 3)
            small, small_tracks = add_artist(conn, "Small", 1)
            t0 = time.perf_counter()
            fixture = [
                (big, big_tracks, args.sessions, args.listeners, "b-"),
                (small, small_tracks, args.small, max(1, args.small * 3 // 10), "s-"),
            ]
            if args.platform:
                # The platform side: 10M events (3 per session) over 1,000 more artists.
                per_artist = args.platform // 3 // 1000
                for n in range(1000):
                    artist, tracks = add_artist(conn, f"Platform {n}", 2)
                    fixture.append((artist, tracks, per_artist, per_artist // 2 + 1, f"p{n}-"))
            for artist, tracks, sessions, listeners, prefix in fixture:
                conn.execute(
                    EVENTS_SQL,
                    {
                        "prefix": prefix,
                        "artist": artist,
                        "tracks": tracks,
                        "sessions": sessions,
                        "listeners": listeners,
                        "start": start,
                        "span": "28 days",
                    },
                )
            events = conn.execute("SELECT count(*) FROM lufy.events").fetchone()[0]
            conn.execute("VACUUM ANALYZE lufy.events")
        print(f"fixture: {events:,} events written in {time.perf_counter() - t0:.0f}s", flush=True)
        await db.open(wait=True)
        t0 = time.perf_counter()
        projector = LocalProjector(db, EventStore(), batch=args.batch)
        applied = await projector.run(wait_seconds=3600)
        took = time.perf_counter() - t0
        print(
            f"projection (live batches of {args.batch:,}): {applied:,} events in {took:.0f}s "
            f"({applied / took:,.0f} events/s)",
            flush=True,
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            sizes = conn.execute(
                "SELECT (SELECT count(*) FROM lufy.playback_sessions), "
                "(SELECT count(*) FROM lufy.listener_bitmaps), "
                "pg_size_pretty(pg_total_relation_size('lufy.listener_bitmaps'))"
            ).fetchone()
        print(f"read models: {sizes[0]:,} sessions, {sizes[1]:,} bitmap rows ({sizes[2]})")

        figures = set(args.figures.split(","))
        if "refresh" in figures:
            await refresh_figures(db, admin, big, big_tracks, projector, args)
        if "rebuild" in figures:
            await asyncio.to_thread(rebuild_figure, admin, db_url(dbname, "lufy_app"))
        if "import" in figures:
            await asyncio.to_thread(
                import_figure,
                admin,
                db_url(dbname, "lufy_app"),
                small_tracks,
                args.import_events,
                args.listeners,
            )
        if "routes" in figures:
            await measure_routes(db, big, small, args)
    finally:
        await db.close()
        if not args.keep:
            drop_database(ADMIN_BASE, dbname)
        else:
            print(f"kept {dbname}: measure again with --database {dbname}")


async def kept_figures(admin: str, db: Database, args: argparse.Namespace) -> None:
    """`--database NAME`: the import and route figures again on a kept fixture (`--figures`:
    `import` and `routes` are measured here, the others need the run that built it)."""
    figures = set(args.figures.split(","))
    with psycopg.connect(admin, autocommit=True) as conn:
        big, small = (
            conn.execute(
                "SELECT artist_id FROM lufy.tracks WHERE title LIKE %s LIMIT 1", [f"{n} %"]
            ).fetchone()[0]
            for n in ("Big", "Small")
        )
        small_tracks = [
            r[0] for r in conn.execute("SELECT id FROM lufy.tracks WHERE artist_id = %s", [small])
        ]
    if "import" in figures:
        app = db_url(args.database, "lufy_app")
        for n in range(args.rounds):
            # With --also-src, this checkout's import and the other one's alternate.
            for src in [None, args.also_src] if args.also_src else [None]:
                print(f"import round {n + 1}: load {os.getloadavg()[0]:.2f}", flush=True)
                import_figure(admin, app, small_tracks, args.import_events, args.listeners, src)
    if "routes" in figures:
        await db.open(wait=True)
        try:
            await measure_routes(db, big, small, args)
        finally:
            await db.close()


async def measure_routes(
    db: Database, big: uuid.UUID, small: uuid.UUID, args: argparse.Namespace
) -> None:
    dashboard = Dashboard(db)
    scopes = {"big": Scope(big, "artist", big), "small": Scope(small, "artist", small)}
    worst = {"p50": 0.0, "p99": 0.0, "ratio": 0.0}
    print(
        f"{'route':30} {'range':5} {'tz':12} {'big p50':>8} {'p99':>7} {'first':>7} "
        f"{'small p50':>9} {'p99':>7} {'ratio':>6}"
    )
    for name, route in routes(dashboard).items():
        if args.only and args.only not in name:
            continue
        for rng in ("28d", "90d", "12m"):
            for tz in ("UTC", "Asia/Kolkata"):
                if name == "realtime" and rng != "28d":
                    continue
                query = Query(range=rng, tz=tz)
                got = {}
                for who, scope in scopes.items():
                    got[who] = await timed(lambda r=route, s=scope, q=query: r(s, q), args.requests)
                big50, big99 = p(got["big"], 0.5), p(got["big"], 0.99)
                small50, small99 = p(got["small"], 0.5), p(got["small"], 0.99)
                ratio = big50 / small50
                worst = {
                    "p50": max(worst["p50"], big50),
                    "p99": max(worst["p99"], big99),
                    "ratio": max(worst["ratio"], ratio),
                }
                print(
                    f"{name:30} {rng:5} {tz:12} {big50:8.1f} {big99:7.1f} "
                    f"{got['big'][-1] * 1000:7.1f} {small50:9.1f} {small99:7.1f} {ratio:6.2f}",
                    flush=True,
                )
    print(
        f"worst: big p50 {worst['p50']:.1f} ms (target <= 50), big p99 {worst['p99']:.1f} ms "
        f"(target <= 250), ratio big/small p50 {worst['ratio']:.2f} (target <= 2)"
    )
    if args.no_scan:
        return
    period = dashboard.period(Query(range="28d"))
    params = {"from": period.start, "to": period.end, "artist": big}

    async def scan() -> None:
        async with db.transaction(user_id=big, role="artist") as conn:
            await conn.execute(SCAN_SQL, params)

    scans = await timed(scan, max(8, args.requests // 4))
    overview = await timed(lambda: dashboard.overview(scopes["big"], Query()), args.requests)
    print(
        f"baseline, same run: 28d distinct-listener scan p50 {p(scans, 0.5):.1f} ms; "
        f"overview (both periods, every metric) p50 {p(overview, 0.5):.1f} ms: "
        f"ratio {p(overview, 0.5) / p(scans, 0.5):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--listeners", type=int, default=300_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--platform",
        type=int,
        default=0,
        metavar="EVENTS",
        help="also write EVENTS events (the issue: 10000000) over 1,000 more artists",
    )
    parser.add_argument(
        "--figures",
        default="refresh,rebuild,import,routes",
        help="which figures to measure after the fixture (comma-separated)",
    )
    parser.add_argument("--import-events", type=int, default=300_000)
    parser.add_argument(
        "--also-src",
        help="with --database: also measure the import with this src/ (another checkout)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --database: import rounds")
    parser.add_argument(
        "--database",
        help="measure again on a kept fixture (the import and routes figures of --figures)",
    )
    parser.add_argument("--only", help="measure only the routes whose name contains this")
    parser.add_argument(
        "--no-scan", action="store_true", help="skip the distinct-listener scan baseline"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
