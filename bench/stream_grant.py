"""The stream authorisation alone, in process: the grant in one round trip and the remembered
access token, against the previous shape of the same request, interleaved call by call.

    python bench/stream_grant.py [--calls 2000] [--rounds 3] [--pause 0]

`GET /api/music/tracks/{id}/stream` as a signed-in listener (rate limiting on, in the shared
Redis) is driven straight into the ASGI app (no HTTP client, no server: what is timed is the
app's own work and its waits on PostgreSQL and Redis), alternating call by call between:

- **now**: the grant's statement alone in autocommit mode (one round trip: its answer arrives
  committed), the access token remembered after its first verification;
- **before** (the baseline, the code's previous shape, in the same process): the tier resolver
  given as a plain async callable, so the statement and the resolver are pipelined and the
  commit is a second round trip (the path `lufy.catalog.grants` still takes for such a
  resolver), and the access token decoded by PyJWT on every request (its memory emptied before
  each call).

Per side: wall-time p50 and p90, and this process's CPU per call (`time.process_time`: user
and system, so the kernel's side of each round trip too). The figure is now / before.

`--pause MS`: the event loop idles that long before every call (as a server waits for its
next request). With no pause the calls run back to back on a hot CPU, which a request over HTTP
never does: on the shared VM, Python code that runs after 2-4 ms of idling takes 2-3 times as
long as in a tight loop, and so does PostgreSQL's side (docs/benchmarks.md, "fifth pass"); with
`--pause 3` this bench's p50 is about what `lufy serve` spends on the request. A
throw-away database (migrated like production) is dropped at the end. Admin connection:
LUFY_BENCH_ADMIN_URL (default: the OS user on 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from benchkit import drop_database, get_scope, listener_token

from lufy.bootstrap import Container, bootstrap
from lufy.catalog.schemas import UploadCreate
from lufy.media.storage import MemoryStorage
from lufy.migrate import migrate
from lufy.settings import load_settings
from lufy.web.app import create_app
from lufy.web.auth import Principal
from lufy.web.ratelimit import limiter_of

ADMIN_BASE = os.environ.get(
    "LUFY_BENCH_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)
SECRET = "bench-secret-bench-secret-bench-secret-0123"


def _url(dbname: str, *, app: bool) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = f"lufy_app:lufy_app@{base.hostname}:{base.port or 5432}" if app else base.netloc
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


async def _prepare(container: Container) -> tuple[uuid.UUID, str]:
    """A ready, published track and a signed-in listener's access token."""
    artist = Principal(user_id=uuid.uuid4(), role="artist", session_id=uuid.uuid4())
    ticket = await container.catalog.request_upload(
        artist,
        UploadCreate(filename="b.mp3", content_type="audio/mpeg", size_bytes=10, title="bench"),
    )
    # Made ready by hand (no transcoding: the bench times the authorisation only).
    with psycopg.connect(container.settings.DATABASE_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            "UPDATE lufy.tracks SET status = 'ready', published = true WHERE id = %s",
            [ticket.track_id],
        )
    return ticket.track_id, await listener_token(container.accounts)


def _caller(app: Any, track_id: uuid.UUID, token: str) -> Callable[[], Awaitable[int]]:
    path = f"/api/music/tracks/{track_id}/stream"
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> int:
        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = get_scope(path, headers)
        await app(scope, receive, send)
        return status

    return call


async def _round(
    container: Container, call: Callable[[], Awaitable[int]], calls: int, pause: float
) -> None:
    catalog = container.catalog
    rule = catalog.tier_resolver
    remembered = container.accounts.access_tokens._verified

    async def plain(conn: Any, listener_id: uuid.UUID | None, now: datetime) -> Any:
        return "premium"  # what the default rule answers, as a callable: the pipelined path

    wall: dict[str, list[float]] = {"now": [], "before": []}
    cpu: dict[str, float] = {"now": 0.0, "before": 0.0}
    for i in range(2 * calls):
        side = "now" if i % 2 == 0 else "before"
        if side == "now":
            catalog.tier_resolver = rule
        else:
            catalog.tier_resolver = plain
            remembered.clear()
        if pause:
            await asyncio.sleep(pause)
        c0, t0 = time.process_time(), time.perf_counter()
        status = await call()
        wall[side].append(time.perf_counter() - t0)
        cpu[side] += time.process_time() - c0
        if status != 200:
            raise RuntimeError(f"stream authorisation answered {status}")
    catalog.tier_resolver = rule
    p50 = {s: statistics.median(w) for s, w in wall.items()}
    p90 = {s: sorted(w)[int(0.9 * (len(w) - 1))] for s, w in wall.items()}
    per_call = {s: c / calls for s, c in cpu.items()}
    print(
        f"stream authorisation in process, {calls} calls per side, interleaved, "
        f"{pause * 1000:g} ms idle before each: "
        f"now p50 {p50['now'] * 1000:.2f} ms p90 {p90['now'] * 1000:.2f} ms CPU "
        f"{per_call['now'] * 1000:.3f} ms/call; before p50 {p50['before'] * 1000:.2f} ms p90 "
        f"{p90['before'] * 1000:.2f} ms CPU {per_call['before'] * 1000:.3f} ms/call; ratio "
        f"now/before: p50 {p50['now'] / p50['before']:.2f}, CPU "
        f"{per_call['now'] / per_call['before']:.2f}; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )


async def main(calls: int, rounds: int, pause: float) -> None:
    dbname = f"lufy_bench_grant_{uuid.uuid4().hex[:8]}"
    migrate(_url(dbname, app=False), _url(dbname, app=True))
    try:
        settings = load_settings(
            DATABASE_URL=_url(dbname, app=True),
            DATABASE_ADMIN_URL=_url(dbname, app=False),
            JWT_SECRET=SECRET,
            APP_URL="http://127.0.0.1:8000",
            LUFY_ENV="test",
            RATE_LIMIT_USER="1000000/minute",
        )
        container = bootstrap(settings, storage=MemoryStorage())
        app = create_app(container)
        await container.start()
        try:
            track_id, token = await _prepare(container)
            call = _caller(app, track_id, token)
            for _ in range(50):  # warm: connections, prepared statements, caches
                await call()
            for _ in range(rounds):
                await _round(container, call, calls, pause)
        finally:
            await container.stop()
            await limiter_of(container).aclose()
    finally:
        drop_database(ADMIN_BASE, dbname)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pause", type=float, default=0.0, help="ms the loop idles before each call (0: none)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds, args.pause / 1000))
