"""Dashboard reads per second with one primary vs primary + one streaming replica, same run.

    .venv/bin/python bench/replica_reads.py [--seconds 10 --rounds 2 --concurrency 4]

What runs: a throwaway PostgreSQL primary (loopback port, pg_stat_statements loaded, `lufy
migrate`) and a hot standby made with `pg_basebackup -R`. One artist, 20 tracks and 20,000
playback events through the import path and the analytics projection. Then, alternating, for
`--seconds` each: `--concurrency` tasks calling the dashboard's overview (28 days, the artist's
RLS context) through `Database(primary)` (the baseline: no DATABASE_READ_URL) and through the
read database `lufy.readdb` builds when DATABASE_READ_URL is set (replica fresh).

Printed: reads/s of each side, their ratio, and where the dashboard's statements ran (counted
by pg_stat_statements on each server): the share moved off the primary, target 100 %. Both
servers share this machine's two cores with the client, so reads/s is not expected to double.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.harness import PgCluster  # noqa: E402
from tests.faults.standby import (  # noqa: E402
    Standby,
    dashboard_statement_calls,
    enable_statement_stats,
)

from lufy.analytics.dashboard import Dashboard, Query, Scope  # noqa: E402
from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor  # noqa: E402
from lufy.db import Database  # noqa: E402
from lufy.eventstore import EventStore  # noqa: E402
from lufy.migrate import migrate  # noqa: E402
from lufy.readdb import ReadDatabase  # noqa: E402
from lufy.testing.analytics import LocalProjector  # noqa: E402

DB = "lufy_replica_bench"


def events_for(tracks: list[str], n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    now = datetime.now(UTC)
    out: list[dict[str, Any]] = []
    session = 0
    while len(out) < n:
        session += 1
        start = now - timedelta(seconds=rng.uniform(60, 27 * 86400))
        base = {
            "session_id": f"s-{session}",
            "anonymous_id": f"l-{rng.randrange(5000)}",
            "track_id": rng.choice(tracks),
            "country": rng.choice(["SE", "US", "IN"]),
            "device": "mobile",
            "source": "playlist",
        }
        listened = rng.choice([10_000, 45_000, 120_000])
        for k, kind in enumerate(("playback.started", "playback.progress", "playback.progress")):
            ms = listened * k // 2
            out.append(
                {
                    **base,
                    "event_id": str(uuid.uuid4()),
                    "type": kind,
                    "occurred_at": (start + timedelta(milliseconds=ms)).isoformat(),
                    "listened_ms": ms,
                }
            )
    return out[:n]


async def drive(dashboard: Dashboard, scope: Scope, seconds: float, concurrency: int) -> int:
    query = Query(range="28d", tz="UTC")
    deadline = time.monotonic() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await dashboard.overview(scope, query)
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def run(args: argparse.Namespace, primary: PgCluster, standby: Standby) -> None:
    admin = primary.url(DB)
    artist = uuid.uuid4()
    tracks = [uuid.uuid4() for _ in range(20)]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO lufy.users (id, email, display_name, role, email_verified) "
            "VALUES (%s, %s, 'Bench', 'artist', true)",
            [artist, f"{artist.hex}@bench.test"],
        )
        for n, track in enumerate(tracks):
            conn.execute(
                "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published) "
                "VALUES (%s, %s, %s, 'ready', 240000, true)",
                [track, artist, f"T{n}"],
            )
    app_primary = primary.url(DB, "lufy_app", "lufy_app")
    app_replica = standby.url(DB, "lufy_app", "lufy_app")
    db = Database(app_primary, max_size=args.concurrency + 2)
    replica = Database(app_replica, max_size=args.concurrency + 2)
    await db.open(wait=True)
    try:
        events = events_for([str(t) for t in tracks], args.events)
        ingestor = Ingestor(db, EventStore(), sample_rate=1.0)
        for i in range(0, len(events), 5000):
            await ingestor.ingest(
                events[i : i + 5000], IngestContext(historical=True), event_type=ImportedEvent
            )
        await LocalProjector(db, EventStore(), batch=5000).run()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ANALYZE")
        read_db = ReadDatabase(db, replica, max_lag=10.0)
        for _ in range(600):
            lag = await read_db.replica_lag()
            if lag == 0.0:
                break
            await asyncio.sleep(0.1)
        scope = Scope(artist, "artist", artist)
        sides = {"primary only": Dashboard(db), "primary + replica": Dashboard(read_db)}
        reads = dict.fromkeys(sides, 0)
        elapsed = dict.fromkeys(sides, 0.0)
        on_primary = dict.fromkeys(sides, 0)
        on_replica = dict.fromkeys(sides, 0)
        for dashboard in sides.values():  # warm-up
            await drive(dashboard, scope, 1.0, args.concurrency)
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                before = (
                    await dashboard_statement_calls(admin, DB),
                    await dashboard_statement_calls(standby.url(DB), DB),
                )
                t0 = time.monotonic()
                reads[side] += await drive(sides[side], scope, args.seconds, args.concurrency)
                elapsed[side] += time.monotonic() - t0
                on_primary[side] += await dashboard_statement_calls(admin, DB) - before[0]
                on_replica[side] += await dashboard_statement_calls(standby.url(DB), DB) - before[1]
        print(f"{args.events:,} events; {args.concurrency} concurrent readers; overview 28 d")
        print(
            f"{'side':<20} {'reads':>7} {'reads/s':>8} {'stmts on primary':>17} "
            f"{'stmts on replica':>17}"
        )
        for side in sides:
            print(
                f"{side:<20} {reads[side]:>7} {reads[side] / elapsed[side]:>8.1f} "
                f"{on_primary[side]:>17} {on_replica[side]:>17}"
            )
        base = reads["primary only"] / elapsed["primary only"]
        with_replica = reads["primary + replica"] / elapsed["primary + replica"]
        moved = on_replica["primary + replica"]
        total = moved + on_primary["primary + replica"]
        print(f"reads/s with the replica / primary only: {with_replica / base:.2f}")
        print(
            f"dashboard statements moved off the primary: {moved}/{total} = "
            f"{100 * moved / max(total, 1):.1f} % (target 100 %)"
        )
        load = os.getloadavg()
        print(f"load average: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    finally:
        await replica.close()
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    primary = PgCluster()
    standby: Standby | None = None
    try:
        enable_statement_stats(primary)
        primary.start()
        migrate(primary.url(DB), primary.url(DB, "lufy_app", "lufy_app"))
        with psycopg.connect(primary.url(DB), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        standby = Standby(primary)
        asyncio.run(run(args, primary, standby))
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()


if __name__ == "__main__":
    main()
