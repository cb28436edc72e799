"""HTTP ingestion throughput (POST /api/analytics/events, batches of 500) as a ratio to raw COPY
of the same events into lufy.events, measured in the same run (target >= 0.5).

    .venv/bin/python bench/analytics_ingest.py [--events 50000] [--rounds 3] [--concurrency 4]

A fresh database is migrated; one artist with 20 tracks is created. Each round generates
`--events` playback events (2,000 anonymous listeners, one day), then
- baseline: the same events as rows (payload JSON, metadata, stream, time) copied with COPY
  into lufy.events by one connection, in batches of 500 (one transaction each), and
- HTTP: the same events posted as JSON batches of 500 to `lufy serve` (uvicorn with
  `--server-workers` workers, default 1; rate limiting off) by a separate load process with
  `--concurrency` requests in flight; the server validates, resolves tracks, hashes
  listeners, and appends with EventStore.append_bulk.
Fresh event ids per run, so nothing is a duplicate. Prints each round and the median ratio.
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
import sys
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


def db_url(dbname: str, user: str | None = None) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = base.netloc if user is None else f"{user}:{user}@{base.hostname}:{base.port or 5432}"
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_events(n: int, tracks: list[str]) -> list[dict]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        session = i // 5
        out.append(
            {
                "event_id": str(uuid.uuid4()),
                "type": "playback.started" if i % 5 == 0 else "playback.progress",
                "occurred_at": (now - timedelta(seconds=86_000 - i % 86_000)).isoformat(),
                "session_id": f"s-{session}",
                "anonymous_id": f"listener-{session % 2000}",
                "track_id": tracks[session % len(tracks)],
                "listened_ms": (i % 5) * 30_000,
                "source": "playlist",
            }
        )
    return out


def copy_baseline(url: str, events: list[dict]) -> float:
    """Events per second for COPY of the same events (as the rows ingestion would write)."""
    rows = []
    for e in events:
        data = {k: v for k, v in e.items() if k not in ("event_id", "type", "occurred_at")}
        data["listener_key"] = "0" * 32
        rows.append(
            (
                e["event_id"],
                "analytics",
                e["session_id"],
                e["type"],
                1,
                json.dumps(data),
                '{"weight":1.0}',
                e["occurred_at"],
            )
        )
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(
                    "COPY lufy.events (event_id, stream_type, stream_id, type, schema_version,"
                    " data, metadata, occurred_at) FROM STDIN"
                ) as copy,
            ):
                for row in rows[i : i + BATCH]:
                    copy.write_row(row)
        return len(rows) / (time.perf_counter() - started)


async def _load(url: str, path: str, concurrency: int) -> None:
    batches = json.loads(Path(path).read_text())  # noqa: ASYNC240 - before the clock starts
    queue: asyncio.Queue[str] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(json.dumps({"events": b}))
    accepted = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            body = queue.get_nowait()
            r = await client.post(
                "/api/analytics/events", content=body, headers={"content-type": "application/json"}
            )
            r.raise_for_status()
            accepted += r.json()["accepted"]

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    print(json.dumps({"accepted": accepted, "seconds": elapsed}))


def http_run(url: str, events: list[dict], concurrency: int, tmp: Path) -> float:
    path = tmp / f"batches-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps([events[i : i + BATCH] for i in range(0, len(events), BATCH)]))
    out = subprocess.run(
        [sys.executable, __file__, "--client", url, str(path), "--concurrency", str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
    )
    path.unlink()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["accepted"] == len(events), result
    return result["accepted"] / result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--client", nargs=2, metavar=("URL", "FILE"))
    args = parser.parse_args()
    if args.client:
        asyncio.run(_load(args.client[0], args.client[1], args.concurrency))
        return

    from lufy.migrate import migrate

    dbname = f"lufy_bench_ingest_{uuid.uuid4().hex[:8]}"
    migrate(db_url(dbname), db_url(dbname, "lufy_app"))
    admin = db_url(dbname)
    tracks = []
    with psycopg.connect(admin, autocommit=True) as conn:
        artist = uuid.uuid4()
        conn.execute(
            "INSERT INTO lufy.users (id, email, display_name, role, email_verified) "
            "VALUES (%s, %s, 'Bench', 'artist', true)",
            [artist, f"{artist.hex}@bench.test"],
        )
        for i in range(20):
            track = uuid.uuid4()
            conn.execute(
                "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published) "
                "VALUES (%s, %s, %s, 'ready', 240000, true)",
                [track, artist, f"T{i}"],
            )
            tracks.append(str(track))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url(dbname, "lufy_app"),
        "DATABASE_ADMIN_URL": admin,
        "RATE_LIMIT_ENABLED": "false",
        "LUFY_ENV": "dev",
        "JWT_SECRET": "bench-secret-that-is-long-enough-for-hs256-0123456789",
    }
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/lufy"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.server_workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tmp = Path("/tmp")
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        http_run(base, make_events(2000, tracks), args.concurrency, tmp)  # warm-up
        ratios = []
        for round_ in range(1, args.rounds + 1):
            copy_rate = copy_baseline(admin, make_events(args.events, tracks))
            http_rate = http_run(base, make_events(args.events, tracks), args.concurrency, tmp)
            ratios.append(http_rate / copy_rate)
            print(
                f"round {round_}: HTTP {http_rate:,.0f} events/s, COPY {copy_rate:,.0f} events/s,"
                f" ratio {http_rate / copy_rate:.2f}",
                flush=True,
            )
        print(f"median ratio HTTP/COPY: {statistics.median(ratios):.2f} (target >= 0.5)")
    finally:
        server.terminate()
        server.wait(timeout=20)
        drop_database(ADMIN_BASE, dbname)


if __name__ == "__main__":
    main()
