"""Ingest-to-dashboard freshness under a steady 2,000 events/s: p99 of the time from a POST
being answered to the play showing in the dashboard's read model (target p99 <= 2 s).

    .venv/bin/python bench/analytics_freshness.py [--rate 2000] [--seconds 60]

A fresh database; `lufy serve` (uvicorn, one worker) and `lufy projector` run as processes of
their own, as in production. This process sends `--rate` events per second in batches of 500
(background plays of 40 tracks), and once per second a marker play (playback.started and a
progress at 30 s, so one stream) of a separate marker artist, timestamped when its POST returns.
An observer polls what the dashboard reads (lufy.playback_sessions under the marker artist's RLS
context, the rows `overview`/`realtime` count) every 20 ms; freshness is when the marker
session first appears as a stream minus when its POST returned. Also printed: the median, and
the ratio p99 / 2 s. The baseline "same run" figure is the observer's polling interval.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from benchkit import drop_database

ADMIN_BASE = os.environ.get(
    "LUFY_TEST_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parents[1]
BATCH = 500
POLL = 0.02


def db_url(dbname: str, user: str | None = None) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = base.netloc if user is None else f"{user}:{user}@{base.hostname}:{base.port or 5432}"
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def event(
    track: str, session: str, kind: str, ms: int, at: datetime, grant: str | None = None
) -> dict:
    body = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "occurred_at": at.isoformat(),
        "session_id": session,
        "anonymous_id": f"l-{hash(session) % 5000}",
        "track_id": track,
        "listened_ms": ms,
    }
    if grant is not None:
        body["grant_id"] = grant
    return body


async def issue_grants(app_url: str, track: str, n: int) -> list[str]:
    """Stream grants for the marker plays (only sessions backed by a grant are streams)."""
    from lufy.db import Database
    from lufy.eventstore import EventStore
    from lufy.testing.analytics import issue_grant

    db = Database(app_url, min_size=1, max_size=1)
    await db.open(wait=True)
    try:
        store = EventStore()
        return [str(await issue_grant(db, store, uuid.UUID(track))) for _ in range(n)]
    finally:
        await db.close()


async def run(args: argparse.Namespace) -> None:
    from lufy.migrate import migrate

    dbname = f"lufy_bench_fresh_{uuid.uuid4().hex[:8]}"
    migrate(db_url(dbname), db_url(dbname, "lufy_app"))
    admin = db_url(dbname)
    tracks: list[str] = []
    marker_artist = uuid.uuid4()
    marker_track = str(uuid.uuid4())
    with psycopg.connect(admin, autocommit=True) as conn:
        background_artist = uuid.uuid4()
        for artist in (background_artist, marker_artist):
            conn.execute(
                "INSERT INTO lufy.users (id, email, display_name, role, email_verified) "
                "VALUES (%s, %s, 'Bench', 'artist', true)",
                [artist, f"{artist.hex}@bench.test"],
            )
        for i in range(40):
            track = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published) "
                "VALUES (%s, %s, %s, 'ready', 240000, true)",
                [track, background_artist, f"T{i}"],
            )
            tracks.append(track)
        conn.execute(
            "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published) "
            "VALUES (%s, %s, 'Marker', 'ready', 240000, true)",
            [marker_track, marker_artist],
        )
    grants = await issue_grants(db_url(dbname, "lufy_app"), marker_track, args.seconds + 120)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url(dbname, "lufy_app"),
        "DATABASE_ADMIN_URL": admin,
        "REDIS_URL": os.environ.get("LUFY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "RATE_LIMIT_ENABLED": "false",
        "LUFY_ENV": "dev",
        "JWT_SECRET": "bench-secret-that-is-long-enough-for-hs256-0123456789",
    }
    lufy = str(ROOT / ".venv/bin/lufy")
    # The servers start once, before anything is measured.
    processes = [
        subprocess.Popen(  # noqa: ASYNC220
            [lufy, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(  # noqa: ASYNC220
            [lufy, "projector"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ),
    ]
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = asyncio.Event()
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)

            async def post(events: list[dict]) -> None:
                r = await client.post(
                    "/api/analytics/events",
                    content=json.dumps({"events": events}),
                    headers={"content-type": "application/json"},
                )
                r.raise_for_status()

            async def observe() -> None:
                async with await psycopg.AsyncConnection.connect(
                    db_url(dbname, "lufy_app"), autocommit=True
                ) as conn:
                    while not stop.is_set() or len(seen) < len(sent):
                        async with conn.transaction():
                            await conn.execute(
                                "SELECT set_config('app.current_user_id', %s, true), "
                                "set_config('app.current_role', 'artist', true)",
                                [str(marker_artist)],
                            )
                            cur = await conn.execute(
                                "SELECT session_id FROM lufy.playback_sessions "
                                "WHERE is_stream AND artist_id = %s",
                                [marker_artist],
                            )
                            now = time.perf_counter()
                            for (session,) in await cur.fetchall():
                                seen.setdefault(session, now)
                        if stop.is_set() and time.perf_counter() > deadline + 30:
                            break
                        await asyncio.sleep(POLL)

            async def marker(second: int) -> None:
                session = f"marker-{second}"
                at = datetime.now(UTC) - timedelta(seconds=31)
                grant = grants[second]
                await post(
                    [
                        event(marker_track, session, "playback.started", 0, at, grant),
                        event(
                            marker_track,
                            session,
                            "playback.progress",
                            30_000,
                            at + timedelta(seconds=30),
                            grant,
                        ),
                    ]
                )
                sent[session] = time.perf_counter()

            async def foreign() -> None:
                # The read barrier is cluster-wide: a long transaction in another database of
                # the same PostgreSQL (other suites on this shared machine) delays projections.
                async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
                    while not stop.is_set():
                        cur = await conn.execute(
                            "SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0) "
                            "FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                            "AND datname <> current_database()"
                        )
                        row = await cur.fetchone()
                        foreign_ages.append((time.perf_counter(), float(row[0]) if row else 0.0))
                        await asyncio.sleep(0.2)

            foreign_ages: list[tuple[float, float]] = []
            watcher = asyncio.create_task(foreign())
            observer = asyncio.create_task(observe())
            per_second = max(1, args.rate // BATCH)
            started = time.perf_counter()
            deadline = started + args.seconds
            n = 0
            tasks: set[asyncio.Task[None]] = set()
            for second in range(args.seconds):
                tick = started + second
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))
                for b in range(per_second):
                    now = datetime.now(UTC)
                    batch = []
                    for _ in range(BATCH):
                        n += 1
                        session = f"bg-{n // 4}"
                        batch.append(
                            event(
                                tracks[n % len(tracks)],
                                session,
                                "playback.progress",
                                (n % 4) * 20_000,
                                now,
                            )
                        )
                    task = asyncio.create_task(post(batch))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    if b == per_second // 2:
                        m = asyncio.create_task(marker(second))
                        tasks.add(m)
                        m.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
            achieved = n / (time.perf_counter() - started)
            stop.set()
            await observer
            await watcher
        delays = sorted(seen[s] - sent[s] for s in sent if s in seen)
        missing = len(sent) - len(delays)
        p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
        print(
            f"load: {achieved:,.0f} events/s offered over {args.seconds}s; "
            f"{len(delays)} markers seen, {missing} never seen"
        )
        print(
            f"freshness: median {statistics.median(delays):.3f}s, p99 {p99:.3f}s, "
            f"max {delays[-1]:.3f}s (poll interval {POLL}s); p99 / 2 s = {p99 / 2:.2f} "
            "(target <= 1)"
        )
        ages = [a for _, a in foreign_ages]
        slow = [s for s in sent if s in seen and seen[s] - sent[s] > 1.0]
        blocked = [
            s for s in slow if any(sent[s] <= t <= seen[s] and a > 0.5 for t, a in foreign_ages)
        ]
        print(
            f"other databases: longest open write transaction {max(ages, default=0):.1f}s, one "
            f"over 1 s open {sum(a > 1 for a in ages) / max(1, len(ages)):.0%} of the time; "
            f"{len(blocked)} of {len(slow)} markers slower than 1 s waited while one was open "
            "(the read barrier is cluster-wide)"
        )
        fair = sorted(seen[s] - sent[s] for s in sent if s in seen and s not in blocked)
        if fair:
            p99_fair = fair[min(len(fair) - 1, int(0.99 * len(fair)))]
            print(f"without those: p99 {p99_fair:.3f}s over {len(fair)} markers")
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            p.wait(timeout=20)
        drop_database(ADMIN_BASE, dbname)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=60)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
