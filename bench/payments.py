"""What a Stripe webhook costs end to end: signed `POST /api/payments/webhook` (signature check
with the `stripe` library, translation, append with the inline entitlements model, HTTP), as a
ratio to appending the same Lufy events straight to the event store, measured in the same run.

    .venv/bin/python bench/payments.py [--events 600] [--rounds 5] [--concurrency 4]

One fresh database (migrated, dropped at the end), one app in this process (httpx ASGI
transport, rate limiting off), distinct Stripe `customer.subscription.updated` events signed
with Stripe's scheme. Rounds alternate webhook / append / append / webhook ... so drift on the
shared machine falls on both sides; the figure is the median of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import hmac
import itertools
import json
import logging
import os
import statistics
import tempfile
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from benchkit import drop_database

from lufy.bootstrap import Container, bootstrap
from lufy.eventstore import ANY
from lufy.eventstore.envelope import NewEvent
from lufy.migrate import migrate
from lufy.payments.events import STREAM_TYPE
from lufy.payments.model import translate
from lufy.settings import load_settings
from lufy.web.app import create_app

ADMIN_BASE = os.environ.get(
    "LUFY_TEST_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("LUFY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "whsec_bench_" + "0" * 32
_ids = itertools.count()


def _url(dbname: str, netloc: str | None = None) -> str:
    parts = urlsplit(ADMIN_BASE)
    return urlunsplit(parts._replace(path=f"/{dbname}", netloc=netloc or parts.netloc))


def _stripe_event() -> dict[str, Any]:
    n = next(_ids)
    now = int(time.time())
    sub = {
        "id": f"sub_bench{n}",
        "object": "subscription",
        "customer": f"cus_bench{n % 97}",
        "status": "active",
        "cancel_at_period_end": False,
        "current_period_end": now + 30 * 86400,
        "items": {"object": "list", "data": [{"price": {"id": "price_premium"}}]},
        "metadata": {"lufy_user_id": str(uuid.uuid4())},
    }
    return {
        "id": f"evt_bench{n}_{uuid.uuid4().hex[:8]}",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": now,
        "data": {"object": sub},
    }


def _signed(evt: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(evt).encode()
    t = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"}


async def _webhooks(client: httpx.AsyncClient, n: int, conc: int) -> float:
    batches = [[_signed(_stripe_event()) for _ in range(n // conc)] for _ in range(conc)]

    async def worker(items: list[tuple[bytes, dict[str, str]]]) -> None:
        for body, headers in items:
            response = await client.post("/api/payments/webhook", content=body, headers=headers)
            assert response.status_code == 200, response.text

    started = time.perf_counter()
    await asyncio.gather(*(worker(b) for b in batches))
    return (n // conc * conc) / (time.perf_counter() - started)


async def _appends(container: Container, n: int, conc: int) -> float:
    batches = [[_stripe_event() for _ in range(n // conc)] for _ in range(conc)]

    async def worker(items: list[dict[str, Any]]) -> None:
        for evt in items:
            event = translate(evt)
            assert event is not None
            async with container.db.transaction(role="system") as conn:
                await container.store.append(
                    conn,
                    STREAM_TYPE,
                    evt["data"]["object"]["customer"],
                    [NewEvent(event=event)],
                    expected=ANY,
                )

    started = time.perf_counter()
    await asyncio.gather(*(worker(b) for b in batches))
    return (n // conc * conc) / (time.perf_counter() - started)


async def run(events: int, rounds: int, concurrency: int) -> None:
    dbname = f"lufy_bench_payments_{uuid.uuid4().hex[:8]}"
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
            STRIPE_SECRET_KEY="sk_test_bench",
            STRIPE_WEBHOOK_SECRET=SECRET,
        )
        container = bootstrap(settings)
        await container.start()
        try:
            transport = httpx.ASGITransport(app=create_app(container))
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await _webhooks(client, events // 4, concurrency)  # warm-up
                await _appends(container, events // 4, concurrency)
                ratios: list[float] = []
                hooks: list[float] = []
                plain: list[float] = []
                for i in range(rounds):
                    if i % 2 == 0:
                        w = await _webhooks(client, events, concurrency)
                        a = await _appends(container, events, concurrency)
                    else:
                        a = await _appends(container, events, concurrency)
                        w = await _webhooks(client, events, concurrency)
                    hooks.append(w)
                    plain.append(a)
                    ratios.append(w / a)
                    print(
                        f"round {i + 1}: webhooks {w:.0f}/s, bare appends {a:.0f}/s, "
                        f"ratio {ratios[-1]:.3f}"
                    )
        finally:
            await container.stop()
    finally:
        drop_database(ADMIN_BASE, dbname)
    print(
        f"webhooks median {statistics.median(hooks):.0f}/s, "
        f"bare appends median {statistics.median(plain):.0f}/s"
    )
    print(f"ratio (signed webhook over HTTP / bare append): {statistics.median(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(run(args.events, args.rounds, args.concurrency))


if __name__ == "__main__":
    main()
