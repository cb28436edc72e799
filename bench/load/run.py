"""A bounded load test of the whole API: ingestion, dashboard reads, sign-ins and stream
authorisations at once, driven by `wrk` (installed from Debian when missing) against loopback.

    .venv/bin/python bench/load/run.py [--duration 20] [--api-workers 1] [--scale 1.0]

What runs: `lufy serve` (uvicorn) and `lufy projector` as subprocesses on a fresh database in the
local PostgreSQL and a redis-server of their own, rate limiting ON (clients come from many
addresses through a trusted proxy, as behind a load balancer, so the per-IP sign-in policy does
not refuse them; sign-ins rotate over many accounts for the per-e-mail policy). One wrk process
per route, all at the same time, each closed-loop with its own connections: together they
saturate the API, so the throughput printed is the highest sustained rate on this machine.

Printed: per route, requests/s, p50 and p99 latency, non-2xx answers, 5xx and socket errors; the
total; and as the in-run baseline, `GET /healthz` alone with the same total connections (the
framework's floor): the mix's throughput as a ratio to it. Exit status 1 if any 5xx or socket
error was seen (the target is none).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
ADMIN_BASE = os.environ.get(
    "LUFY_TEST_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)
JWT_SECRET = "load-test-secret-that-is-long-enough-for-hs256-0123456789"
PASSWORD = "a load test password that is long enough"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)

LUA_COMMON = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
-- Globals, not locals: done() reads them per thread with thread:get().
s4, s5 = 0, 0
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local function uuid4()
  return (string.gsub('xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx', '[xy]', function(c)
    local v = (c == 'x') and math.random(0, 15) or math.random(8, 11)
    return string.format('%x', v)
  end))
end
local function client_ip()
  return '10.' .. math.random(0, 255) .. '.' .. math.random(0, 255) .. '.' .. math.random(1, 254)
end
function response(status, headers, body)
  if status >= 500 then s5 = s5 + 1 elseif status >= 300 then s4 = s4 + 1 end
end
function done(summary, latency, requests)
  local n4, n5 = 0, 0
  for _, t in ipairs(threads) do n4 = n4 + (t:get('s4') or 0); n5 = n5 + (t:get('s5') or 0) end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"socket_errors":%d,"timeouts":%d,' ..
    '"non_2xx":%d,"http_5xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write, e.timeout,
    n4 + n5, n5, latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""

LUA_ROUTES: dict[str, str] = {
    "healthz": r"""
request = function() return wrk.format('GET', '/healthz') end
""",
    "ingest": r"""
local tracks = {TRACKS}
request = function()
  local track = tracks[math.random(#tracks)]
  local session = uuid4()
  local parts = {}
  local types = {'playback.started', 'playback.progress', 'playback.progress', 'playback.completed'}
  local ms = {0, 15000, 31000, 62000}
  for batch = 1, 2 do
    for i = 1, 4 do
      table.insert(parts, string.format(
        '{"event_id":"%s","type":"%s","occurred_at":"%s","session_id":"%s",' ..
        '"anonymous_id":"anon-%s","track_id":"%s","listened_ms":%d,"source":"load"}',
        uuid4(), types[i], os.date('!%Y-%m-%dT%H:%M:%SZ'), session .. batch, session,
        track, ms[i]))
    end
  end
  local body = '{"events":[' .. table.concat(parts, ',') .. ']}'
  return wrk.format('POST', '/api/analytics/events', {
    ['Content-Type'] = 'application/json', ['User-Agent'] = 'UA',
    ['X-Forwarded-For'] = client_ip()}, body)
end
""",
    "dashboard": r"""
local paths = {'/api/dashboard/overview?range=28d',
               '/api/dashboard/timeseries?metric=streams&granularity=day&range=28d',
               '/api/dashboard/tracks?sort=streams&limit=10'}
local n = 0
request = function()
  n = n + 1
  return wrk.format('GET', paths[(n % #paths) + 1], {
    ['Authorization'] = 'Bearer ARTIST_TOKEN', ['X-Forwarded-For'] = client_ip()})
end
""",
    "sign-in": r"""
local emails = {EMAILS}
local next_email = math.random(#emails)
request = function()
  -- In turn, not at random: the per-e-mail sign-in policy allows 5 per 15 minutes each.
  next_email = (next_email % #emails) + 1
  local body = string.format('{"email":"%s","password":"PASSWORD"}', emails[next_email])
  return wrk.format('POST', '/api/auth/sign-in', {
    ['Content-Type'] = 'application/json', ['X-Forwarded-For'] = client_ip()}, body)
end
""",
    "stream": r"""
local tracks = {TRACKS}
request = function()
  return wrk.format('GET', '/api/music/tracks/' .. tracks[math.random(#tracks)] .. '/stream', {
    ['Authorization'] = 'Bearer LISTENER_TOKEN', ['X-Forwarded-For'] = client_ip()})
end
""",
}


@dataclass
class Result:
    route: str
    requests: int
    seconds: float
    socket_errors: int
    timeouts: int
    non_2xx: int
    http_5xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
    assert found, "wrk could not be installed"
    return found


def db_url(dbname: str, netloc: str | None = None) -> str:
    base = urlsplit(ADMIN_BASE)
    parts = base._replace(path=f"/{dbname}")
    if netloc:
        parts = parts._replace(netloc=f"{netloc}@{base.hostname}:{base.port or 5432}")
    return urlunsplit(parts)


def lua(route: str, **values: str) -> str:
    text = LUA_COMMON + LUA_ROUTES[route]
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def run_wrk(
    wrk: str, url: str, script: Path, route: str, connections: int, seconds: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def collect(route: str, process: subprocess.Popen[str]) -> Result:
    out, _ = process.communicate(timeout=600)
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk for {route} printed no result:\n{out}")
    data = json.loads(line[len("RESULT ") :])
    return Result(
        route=route,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        socket_errors=data["socket_errors"],
        timeouts=data["timeouts"],
        non_2xx=data["non_2xx"],
        http_5xx=data["http_5xx"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


async def seed(env: dict[str, str], listeners: int, tracks: int) -> dict[str, Any]:
    """Users through the accounts service (the same events and read models as sign-up), and
    ready, published tracks straight in their read model (uploads are not under test here)."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT / "src"))
    from lufy.accounts.clients import ClientInfo
    from lufy.bootstrap import bootstrap
    from lufy.settings import load_settings

    container = bootstrap(load_settings())
    await container.start()
    try:
        service = container.accounts
        client = ClientInfo(user_agent="bench", ip="127.0.0.1")

        async def user(role: str, email: str) -> tuple[uuid.UUID, str]:
            created = await service.register(
                email=email, password=PASSWORD, role=role, display_name=email, verified=True
            )
            signed = await service.sign_in(email=email, password=PASSWORD, client=client)
            return created.id, signed.access_token

        artist_id, artist_token = await user("artist", "load-artist@example.com")
        _, listener_token = await user("listener", "load-listener@example.com")
        emails = [f"load-{n}@example.com" for n in range(listeners)]
        for email in emails:
            await service.register(
                email=email, password=PASSWORD, role="listener", display_name=email, verified=True
            )
    finally:
        await container.stop()
    track_ids = [uuid.uuid4() for _ in range(tracks)]
    with psycopg.connect(env["DATABASE_ADMIN_URL"], autocommit=True) as conn:
        for n, track_id in enumerate(track_ids):
            conn.execute(
                "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published) "
                "VALUES (%s, %s, %s, 'ready', 200000, true)",
                [track_id, artist_id, f"Load {n}"],
            )
    return {
        "artist_token": artist_token,
        "listener_token": listener_token,
        "emails": emails,
        "tracks": [str(t) for t in track_ids],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of mixed load")
    parser.add_argument("--api-workers", type=int, default=1, help="lufy serve worker processes")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies every route's connections"
    )
    parser.add_argument("--listeners", type=int, default=100, help="accounts to sign in with")
    parser.add_argument(
        "--only",
        choices=["ingest", "dashboard", "sign-in", "stream"],
        action="append",
        help="run only these routes (repeatable), to see one route's cost alone",
    )
    args = parser.parse_args()
    mix = {"ingest": 4, "dashboard": 4, "sign-in": 2, "stream": 4}
    if args.only:
        mix = {route: n for route, n in mix.items() if route in args.only}
    mix = {route: max(1, round(n * args.scale)) for route, n in mix.items()}

    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="lufy-load-"))
    dbname = f"lufy_load_{uuid.uuid4().hex[:8]}"
    redis_port, api_port = free_port(), free_port()
    with ExitStack() as stack:
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        stack.callback(redis.kill)
        env = {
            **os.environ,
            "DATABASE_URL": db_url(dbname, "lufy_app:lufy_app"),
            "DATABASE_ADMIN_URL": db_url(dbname),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "LUFY_ENV": "test",
            "JWT_SECRET": JWT_SECRET,
            "EMAIL_BACKEND": "log",
            "MEDIA_ROOT": str(workdir / "media"),
            "APP_URL": f"http://127.0.0.1:{api_port}",
            "TRUSTED_PROXIES": "127.0.0.0/8",
            "RATE_LIMIT_USER": "1000000/minute",
            "RATE_LIMIT_GUEST": "1000000/minute",
        }
        lufy = [sys.executable, "-m", "lufy.cli"]
        subprocess.run([*lufy, "migrate"], env=env, check=True, capture_output=True)

        def drop() -> None:
            with psycopg.connect(ADMIN_BASE, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )

        stack.callback(drop)
        print(f"seeding {args.listeners} listeners, 1 artist, 20 tracks ...", file=sys.stderr)
        data = asyncio.run(seed(env, args.listeners, 20))
        logs = (workdir / "api.log").open("w"), (workdir / "projector.log").open("w")
        api = subprocess.Popen(
            [*lufy, "serve", "--port", str(api_port), "--workers", str(args.api_workers)],
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        )
        stack.callback(lambda: (api.terminate(), api.wait(15)))
        projector = subprocess.Popen(
            [*lufy, "projector"], env=env, stdout=logs[1], stderr=subprocess.STDOUT
        )
        stack.callback(lambda: (projector.terminate(), projector.wait(15)))
        base = f"http://127.0.0.1:{api_port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the API did not become ready; see " + str(workdir))

        values = {
            "TRACKS": ", ".join(f"'{t}'" for t in data["tracks"]),
            "EMAILS": ", ".join(f"'{e}'" for e in data["emails"]),
            "ARTIST_TOKEN": data["artist_token"],
            "LISTENER_TOKEN": data["listener_token"],
            "PASSWORD": PASSWORD,
            "'UA'": f"'{BROWSER_UA}'",
        }
        scripts = {}
        for route in LUA_ROUTES:
            scripts[route] = workdir / f"{route}.lua"
            scripts[route].write_text(lua(route, **values))

        total_connections = sum(mix.values())
        # Warm up every route (connection pools, prepared statements, the JIT of nothing).
        warm = [run_wrk(wrk, base, scripts[r], r, 2, 3) for r in ["healthz", *mix]]
        for route, process in zip(["healthz", *mix], warm, strict=True):
            collect(route, process)
        print(f"baseline: GET /healthz, {total_connections} connections ...", file=sys.stderr)
        baseline = collect(
            "healthz",
            run_wrk(wrk, base, scripts["healthz"], "healthz", total_connections, args.duration),
        )
        print(f"mixed load for {args.duration}s: {mix} ...", file=sys.stderr)
        running = {
            route: run_wrk(wrk, base, scripts[route], route, n, args.duration)
            for route, n in mix.items()
        }
        results = [collect(route, process) for route, process in running.items()]
        metrics = httpx.get(f"{base}/metrics", timeout=10).text

    report(baseline, results, mix, args)
    accepted = [
        line
        for line in metrics.splitlines()
        if line.startswith("lufy_analytics_events_total")
        or line.startswith("lufy_rate_limit_decisions_total")
    ]
    print("\nfrom /metrics after the run:")
    for line in accepted:
        print(f"  {line}")
    bad = sum(r.http_5xx + r.socket_errors + r.timeouts for r in results)
    return 1 if bad else 0


def report(baseline: Result, results: list[Result], mix: dict[str, int], args: Any) -> None:
    total = sum(r.rps for r in results)
    print(
        f"\nLufy load test: {args.duration}s mixed, API workers {args.api_workers}, "
        f"connections {mix}"
    )
    header = (
        f"{'route':<12}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'5xx':>6}{'sock err':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in [*results]:
        print(
            f"{r.route:<12}{r.rps:>9.1f}{r.p50_ms:>9.1f}{r.p90_ms:>9.1f}{r.p99_ms:>9.1f}"
            f"{r.non_2xx:>9}{r.http_5xx:>6}{r.socket_errors + r.timeouts:>9}"
        )
    print(f"{'total':<12}{total:>9.1f}")
    print(
        f"\nbaseline GET /healthz alone: {baseline.rps:.1f} req/s "
        f"(p50 {baseline.p50_ms:.1f} ms, p99 {baseline.p99_ms:.1f} ms)"
    )
    print(f"mixed throughput / healthz throughput = {total / baseline.rps:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
