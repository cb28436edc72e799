"""Throughput of an authenticated `GET /api/auth/session` with the rate limiter on, as a ratio to
the same route with it off, measured in the same run (target >= 0.85).

    .venv/bin/python bench/ratelimit.py [--duration 5] [--rounds 5] [--connections 16]

Two API servers run at once from `lufy serve` (uvicorn, one worker each) on one fresh database
and one Redis database: one with RATE_LIMIT_ENABLED=false, one with it on. `wrk` (installed from
Debian when missing) drives them from its own process, alternating off/on/on/off/... so drift on
the shared machine falls on both sides. The user limit is raised so that no request is refused:
what is measured is the cost of the check (one EVALSHA per request), not the refusals.

`--route PATH --guest` benchmarks another route without a token (used while accounts was not
ready; the limiter's work per request is the same for guests).
"""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis
from benchkit import drop_database

ADMIN_BASE = os.environ.get(
    "LUFY_TEST_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)
REDIS_BASE = os.environ.get("LUFY_TEST_REDIS_URL", "redis://127.0.0.1:6379")
JWT_SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"
EMAIL = "bench-listener@example.com"
PASSWORD = "a bench password that is long enough"


def _url(base: str, dbname: str, netloc: str | None = None) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{dbname}", netloc=netloc or parts.netloc))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian ...", file=sys.stderr)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=False, stdout=subprocess.DEVNULL
    )
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL
        )
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not available")
    return found


@contextmanager
def _database() -> Iterator[tuple[str, str]]:
    from lufy.migrate import migrate

    name = f"lufy_bench_rl_{uuid.uuid4().hex[:8]}"
    admin, app = _url(ADMIN_BASE, name), _url(ADMIN_BASE, name, _app_netloc())
    migrate(admin, app)
    try:
        yield admin, app
    finally:
        drop_database(ADMIN_BASE, name)


def _app_netloc() -> str:
    base = urlsplit(ADMIN_BASE)
    return f"lufy_app:lufy_app@{base.hostname}:{base.port or 5432}"


@contextmanager
def _redis_db() -> Iterator[str]:
    """A Redis database leased like the test suite does, so we never flush someone else's."""
    registry = redis.Redis.from_url(f"{REDIS_BASE}/0")
    token = uuid.uuid4().hex
    for _ in range(120):
        for index in range(1, 16):
            if registry.set(f"lufy:test:lease:{index}", token, nx=True, ex=3600):
                url = f"{REDIS_BASE}/{index}"
                redis.Redis.from_url(url).flushdb()
                try:
                    yield url
                finally:
                    redis.Redis.from_url(url).flushdb()
                    if registry.get(f"lufy:test:lease:{index}") == token.encode():
                        registry.delete(f"lufy:test:lease:{index}")
                return
        time.sleep(1)
    raise SystemExit("no free Redis database")


def _env(admin: str, app: str, redis_url: str, mail: str, enabled: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=app,
        DATABASE_ADMIN_URL=admin,
        REDIS_URL=redis_url,
        JWT_SECRET=JWT_SECRET,
        LUFY_ENV="dev",
        EMAIL_BACKEND="file",
        EMAIL_FILE_DIR=mail,
        RATE_LIMIT_ENABLED="true" if enabled else "false",
        RATE_LIMIT_USER="1000000/minute",
        RATE_LIMIT_GUEST="1000000/minute",
    )
    return env


@contextmanager
def _server(env: dict[str, str], port: int) -> Iterator[tuple[str, int]]:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "lufy.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"server exited:\n{log.read().decode()[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not become ready in 60 s")
            time.sleep(0.3)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, from /proc."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _create_user(env: dict[str, str]) -> None:
    if importlib.util.find_spec("lufy.accounts.cli") is not None:
        subprocess.run(
            [sys.executable, "-m", "lufy.cli", "users", "create", EMAIL, "--role", "listener"],
            input=f"{PASSWORD}\n",
            text=True,
            env=env,
            capture_output=True,
            check=True,
        )
        return
    # Until the CLI lands: the same service call it makes, in a child with the server's env.
    code = (
        "import asyncio\n"
        "from lufy.bootstrap import bootstrap\n"
        "from lufy.settings import load_settings\n"
        "async def main():\n"
        "    c = bootstrap(load_settings())\n"
        "    await c.start()\n"
        "    try:\n"
        f"        await c.accounts.register(email={EMAIL!r}, password={PASSWORD!r},"
        " role='listener', verified=True)\n"
        "    finally:\n"
        "        await c.stop()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def _access_token(base: str, env: dict[str, str]) -> str:
    _create_user(env)
    response = httpx.post(
        f"{base}/api/auth/sign-in", json={"email": EMAIL, "password": PASSWORD}, timeout=10
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _wrk(
    wrk: str, url: str, headers: list[str], seconds: int, connections: int
) -> dict[str, float]:
    args = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if rps is None or total is None:
        raise SystemExit(f"could not read wrk output:\n{out}")
    if bad is not None or errors is not None:
        raise SystemExit(f"the benchmark saw failed requests:\n{out}")

    def latency(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return {
        "rps": float(rps.group(1)),
        "requests": float(total.group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per run")
    parser.add_argument("--rounds", type=int, default=5, help="off/on pairs, alternating order")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--route", default="/api/auth/session")
    parser.add_argument("--guest", action="store_true", help="no token (for other routes)")
    opts = parser.parse_args()

    wrk = _ensure_wrk()
    with ExitStack() as stack:
        admin, app = stack.enter_context(_database())
        redis_url = stack.enter_context(_redis_db())
        mail = stack.enter_context(tempfile.TemporaryDirectory())
        servers = {
            enabled: stack.enter_context(
                _server(_env(admin, app, redis_url, mail, enabled), _free_port())
            )
            for enabled in (False, True)
        }
        bases = {enabled: base for enabled, (base, _) in servers.items()}
        headers: list[str] = []
        if not opts.guest:
            token = _access_token(bases[True], _env(admin, app, redis_url, mail, True))
            headers.append(f"Authorization: Bearer {token}")
        for enabled, base in bases.items():
            check = httpx.get(
                f"{base}{opts.route}", headers=dict(h.split(": ", 1) for h in headers)
            )
            if check.status_code != 200:
                raise SystemExit(f"{opts.route} answered {check.status_code}: {check.text[:300]}")
            if enabled != ("ratelimit-policy" in check.headers):
                raise SystemExit("the limiter is not in the state this server should have")

        results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for round_no in range(opts.rounds):
            order = (False, True) if round_no % 2 == 0 else (True, False)
            for enabled in order:
                url = f"{bases[enabled]}{opts.route}"
                _wrk(wrk, url, headers, opts.warmup, opts.connections)
                cpu_before = _tree_cpu_seconds(servers[enabled][1])
                run = _wrk(wrk, url, headers, opts.duration, opts.connections)
                cpu = _tree_cpu_seconds(servers[enabled][1]) - cpu_before
                run["cpu_us"] = cpu / run["requests"] * 1e6
                results[enabled].append(run)
                label = "on " if enabled else "off"
                print(
                    f"  limiter {label}: {run['rps']:8.0f} req/s  "
                    f"p50 {run['p50_ms']:.2f} ms  p99 {run['p99_ms']:.2f} ms  "
                    f"server CPU {run['cpu_us']:.0f} us/request",
                    flush=True,
                )

    off = statistics.mean(r["rps"] for r in results[False])
    on = statistics.mean(r["rps"] for r in results[True])
    # Each round's on/off pair ran back to back: the median of the pair ratios is the figure,
    # as it is the least moved by other load coming and going on the shared machine.
    pairs = [a["rps"] / b["rps"] for a, b in zip(results[True], results[False], strict=True)]
    ratio = statistics.median(pairs)
    who = "guest" if opts.guest else "authenticated"
    print(
        f"GET {opts.route} ({who}), {opts.connections} connections, "
        f"{opts.rounds} rounds of {opts.duration} s"
    )
    print(f"limiter off: {off:.0f} req/s   limiter on: {on:.0f} req/s (means)")
    print("pair ratios: " + ", ".join(f"{r:.3f}" for r in pairs))
    print(
        f"ratio on/off (median of pairs): {ratio:.3f}  "
        f"(target >= 0.85: {'met' if ratio >= 0.85 else 'NOT met'})"
    )
    cpu_off = statistics.median(r["cpu_us"] for r in results[False])
    cpu_on = statistics.median(r["cpu_us"] for r in results[True])
    print(
        f"API server CPU per request (median): off {cpu_off:.0f} us, on {cpu_on:.0f} us "
        f"(ratio off/on {cpu_off / cpu_on:.3f}; Redis's own time is not included)"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
