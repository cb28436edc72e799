"""A rolling restart of 2 API processes under steady authenticated reads and ingestion.

    .venv/bin/python bench/rolling_restart.py [--steady 15] [--threads 6]

What runs: a PostgreSQL cluster and a redis-server of their own (loopback ports), `lufy migrate`,
two `lufy serve` processes and a `lufy projector`, behind the small load balancer of
`tests/faults/proxy.py` (round robin; a refused connection goes to the next backend, as nginx's
`proxy_next_upstream error`). Client threads send, without retries, `GET /api/auth/session` with
a bearer token and `POST /api/analytics/events` (8 page views) in turn.

Phases, one run: steady (the baseline), then the rolling restart: for each API process, take
it out of rotation, SIGTERM it (it finishes its in-flight requests), start its replacement on
the same port, wait for `/readyz` to answer 200, put it back; then steady again.

Printed: requests and failures (non-2xx or transport errors) per phase, requests/s per phase
and the restart phase's throughput as a ratio to the first steady phase. Exit status 1 when any
request failed (the target is none).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.harness import (  # noqa: E402
    BROWSER_UA,
    LufyProcess,
    PgCluster,
    free_port,
    stack,
    wait_for,
)
from tests.faults.proxy import balancer  # noqa: E402

from lufy.migrate import migrate  # noqa: E402

PASSWORD = "a rolling restart password 42"


def wait_ready(base: str, process: LufyProcess) -> None:
    def ready() -> bool:
        if not process.alive():
            raise AssertionError(f"{process.name} exited:\n{process.tail()}")
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200

    wait_for(ready, 60, f"{process.name} /readyz")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steady", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=6)
    args = parser.parse_args()

    pg = PgCluster()
    pg.start()
    template = "lufy_rolling_template"
    migrate(pg.url(template), pg.url(template, "lufy_app", "lufy_app"))
    workdir = Path(tempfile.mkdtemp(prefix="lufy-rolling-"))
    try:
        with stack(pg, template, workdir) as dep:
            return run(dep, args)
    finally:
        pg.destroy()


def run(dep: Any, args: argparse.Namespace) -> int:
    ports = [free_port(), free_port()]
    backends = [f"http://127.0.0.1:{p}" for p in ports]
    apis: dict[int, LufyProcess] = {}
    generation = 0

    def start_api(port: int) -> LufyProcess:
        nonlocal generation
        generation += 1
        process = LufyProcess(
            f"api-{port}-{generation}", ["serve", "--port", str(port)], dep.env, dep.workdir
        )
        dep.processes.append(process)
        wait_ready(f"http://127.0.0.1:{port}", process)
        return process

    for port in ports:
        apis[port] = start_api(port)
    dep.projector()

    tokens = []
    with httpx.Client(base_url=backends[0], timeout=30, headers={"user-agent": BROWSER_UA}) as c:
        for n in range(4):
            email = f"rolling-{n}-{uuid.uuid4().hex[:6]}@example.com"
            spoof = {"x-forwarded-for": f"10.9.{n}.1"}
            c.post(
                "/api/auth/sign-up",
                json={
                    "email": email,
                    "password": PASSWORD,
                    "display_name": "R",
                    "role": "listener",
                },
                headers=spoof,
            ).raise_for_status()
            signed = c.post(
                "/api/auth/sign-in", json={"email": email, "password": PASSWORD}, headers=spoof
            )
            signed.raise_for_status()
            tokens.append(signed.json()["access_token"])

    lb_port = free_port()
    results: list[tuple[float, bool, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop(n: int) -> None:
        headers = {"user-agent": BROWSER_UA, "authorization": f"Bearer {tokens[n % len(tokens)]}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{lb_port}", timeout=30) as c:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    if i % 2:
                        r = c.get("/api/auth/session", headers=headers)
                    else:
                        events = [
                            {
                                "event_id": str(uuid.uuid4()),
                                "type": "page.viewed",
                                "occurred_at": "2026-12-06T12:00:00Z",
                                "session_id": f"s-{n}",
                                "anonymous_id": f"a-{n}",
                            }
                            for _ in range(8)
                        ]
                        r = c.post(
                            "/api/analytics/events",
                            content=json.dumps({"events": events}),
                            headers={**headers, "content-type": "application/json"},
                        )
                    ok, what = r.status_code < 300, str(r.status_code)
                except httpx.HTTPError as exc:
                    ok, what = False, repr(exc)
                with lock:
                    results.append((time.monotonic(), ok, what))

    phases: list[tuple[str, float, float]] = []
    with balancer(backends, lb_port) as lb:
        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(args.threads)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        time.sleep(args.steady)
        t1 = time.monotonic()
        phases.append(("steady before", t0, t1))
        for port, backend in zip(ports, backends, strict=True):
            lb.drain(backend)
            apis[port].stop(timeout=15)
            apis[port] = start_api(port)
            lb.add(backend)
        t2 = time.monotonic()
        phases.append(("rolling restart", t1, t2))
        time.sleep(args.steady)
        t3 = time.monotonic()
        phases.append(("steady after", t2, t3))
        stop.set()
        for t in threads:
            t.join(timeout=60)
        failovers = lb.connect_failovers

    print(f"load: {args.threads} client threads, no retries; 2 API processes behind the balancer")
    print(f"{'phase':<16} {'seconds':>8} {'requests':>9} {'failed':>7} {'req/s':>8}")
    rates = {}
    failed_total = 0
    for name, start, end in phases:
        rows = [r for r in results if start <= r[0] < end]
        failed = [r for r in rows if not r[1]]
        failed_total += len(failed)
        rates[name] = len(rows) / (end - start)
        print(f"{name:<16} {end - start:>8.1f} {len(rows):>9} {len(failed):>7} {rates[name]:>8.1f}")
        for _, _, what in failed[:5]:
            print(f"    failed: {what}")
    ratio = rates["rolling restart"] / rates["steady before"]
    print(f"connections refused and sent to the other backend: {failovers}")
    print(f"throughput during the restart / steady baseline: {ratio:.2f}")
    print(f"failed requests: {failed_total} (target 0)")
    load = os.getloadavg()
    print(f"load average: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    return 1 if failed_total else 0


if __name__ == "__main__":
    sys.exit(main())
