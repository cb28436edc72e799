"""What per-request revocation costs: authenticated `GET /api/auth/session` with the session
check done on every request, as a ratio to the same route with the check cached for 5 seconds
(the shipped setting), measured in the same run.

    .venv/bin/python bench/auth.py [--requests 2000] [--rounds 5] [--concurrency 8]

One fresh database (migrated, dropped at the end), one app in this process (httpx ASGI
transport, rate limiting off so only auth is measured), one signed-in user. Rounds alternate
cached / uncached / uncached / cached ... so drift on the shared machine falls on both sides;
the figure is the median of the per-pair ratios. Also prints the argon2id cost of one sign-in
with the production parameters (what bounds sign-ins per core).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import statistics
import tempfile
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import httpx
from benchkit import drop_database

from lufy.accounts.passwords import PasswordHashing
from lufy.bootstrap import bootstrap
from lufy.migrate import migrate
from lufy.settings import load_settings
from lufy.web.app import create_app

ADMIN_BASE = os.environ.get(
    "LUFY_TEST_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("LUFY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


def _url(dbname: str, netloc: str | None = None) -> str:
    parts = urlsplit(ADMIN_BASE)
    return urlunsplit(parts._replace(path=f"/{dbname}", netloc=netloc or parts.netloc))


async def _round(client: httpx.AsyncClient, headers: dict[str, str], n: int, conc: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            response = await client.get("/api/auth/session", headers=headers)
            assert response.status_code == 200, response.text

    started = time.perf_counter()
    await asyncio.gather(*(worker(n // conc) for _ in range(conc)))
    return (n // conc * conc) / (time.perf_counter() - started)


async def run(requests: int, rounds: int, concurrency: int) -> None:
    dbname = f"lufy_bench_auth_{uuid.uuid4().hex[:8]}"
    host = urlsplit(ADMIN_BASE)
    app_url = _url(dbname, f"lufy_app:lufy_app@{host.hostname}:{host.port or 5432}")
    migrate(_url(dbname), app_url)
    try:
        settings = load_settings(
            DATABASE_URL=app_url,
            DATABASE_ADMIN_URL=_url(dbname),
            REDIS_URL=REDIS_URL,
            LUFY_ENV="test",
            JWT_SECRET="bench-secret-that-is-long-enough-for-hs256-0123456789",
            EMAIL_BACKEND="file",
            EMAIL_FILE_DIR=tempfile.mkdtemp(prefix="lufy-bench-mail-"),
            RATE_LIMIT_ENABLED=False,
        )
        container = bootstrap(settings)
        await container.start()
        try:
            service = container.accounts
            await service.register(
                email="bench@example.com",
                password="a bench passphrase",
                role="listener",
                verified=True,
                via="cli",
            )
            from lufy.accounts.clients import ClientInfo

            pair = await service.sign_in(
                email="bench@example.com", password="a bench passphrase", client=ClientInfo()
            )
            headers = {"Authorization": f"Bearer {pair.access_token}"}
            transport = httpx.ASGITransport(app=create_app(container))
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                service.session_check_ttl = 5.0
                await _round(client, headers, requests // 4, concurrency)  # warm-up
                ratios: list[float] = []
                cached_all: list[float] = []
                uncached_all: list[float] = []
                for i in range(rounds):
                    order = (5.0, 0.0) if i % 2 == 0 else (0.0, 5.0)
                    result: dict[float, float] = {}
                    for ttl in order:
                        service.session_check_ttl = ttl
                        result[ttl] = await _round(client, headers, requests, concurrency)
                    cached_all.append(result[5.0])
                    uncached_all.append(result[0.0])
                    ratios.append(result[0.0] / result[5.0])
                    print(
                        f"round {i + 1}: cached {result[5.0]:.0f} req/s, "
                        f"checked every request {result[0.0]:.0f} req/s, "
                        f"ratio {ratios[-1]:.3f}"
                    )
        finally:
            await container.stop()
    finally:
        drop_database(ADMIN_BASE, dbname)
    hashing = PasswordHashing()
    stored = hashing.hash("a bench passphrase")
    started = time.perf_counter()
    for _ in range(5):
        hashing.verify(stored, "a bench passphrase")
    argon_ms = (time.perf_counter() - started) / 5 * 1000
    print(
        f"GET /api/auth/session: cached check median {statistics.median(cached_all):.0f} req/s, "
        f"uncached median {statistics.median(uncached_all):.0f} req/s"
    )
    print(f"ratio (session checked on every request / cached 5 s): {statistics.median(ratios):.3f}")
    print(f"argon2id verify (t=3, m=64 MiB, p=4): {argon_ms:.0f} ms per sign-in")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one log line per request otherwise
    asyncio.run(run(args.requests, args.rounds, args.concurrency))


if __name__ == "__main__":
    main()
