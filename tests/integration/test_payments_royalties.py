"""Royalty statements for a generated month, against an independent calculation in integer
arithmetic, in both models, to the cent; and a rebuild from the log gives the same statement."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import psycopg
import pytest

from lufy.analytics.importer import import_lines
from lufy.analytics.ingest import Ingestor
from lufy.bootstrap import Container, bootstrap
from lufy.payments.projections import ENTITLEMENTS, LEDGER
from lufy.payments.royalties import month_statements
from lufy.projections.rebuild import rebuild
from lufy.settings import Settings
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track
from tests.helpers.accounts import create_user
from tests.helpers.http import api_client
from tests.helpers.stripe_fake import StripeFake, with_stripe

MONTH = date(2026, 10, 1)
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
SHARE = Decimal("0.7")


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    with StripeFake() as server:
        yield server


@pytest.fixture
def pay_settings(settings: Settings, fake: StripeFake) -> Settings:
    return with_stripe(settings, fake, ROYALTY_ARTIST_SHARE=SHARE)


@pytest.fixture
async def pay(pay_settings: Settings) -> AsyncIterator[Container]:
    c = bootstrap(pay_settings)
    await c.start()
    yield c
    await c.stop()


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass
class World:
    artists: list[uuid.UUID]
    # currency -> customer -> net revenue of the month (what the oracle expects)
    net: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    customer_user: dict[str, uuid.UUID] = field(default_factory=dict)
    # (listener, artist) -> streams in the month
    streams: dict[tuple[uuid.UUID, uuid.UUID], int] = field(
        default_factory=lambda: defaultdict(int)
    )


async def _generate(
    pay: Container,
    fake: StripeFake,
    admin: psycopg.AsyncConnection[Any],
    seed: int,
    artists: list[uuid.UUID] | None = None,
) -> World:
    rng = random.Random(seed)
    artists = list(artists or [])
    artists += [await insert_artist(admin, name=f"Artist {i}") for i in range(5 - len(artists))]
    tracks = {a: [await insert_track(admin, a) for _ in range(2)] for a in artists}
    world = World(artists=artists)
    service = pay.payments
    subscribers = [uuid.uuid4() for _ in range(9)]
    free_listeners = [uuid.uuid4() for _ in range(4)]
    stripe_events: list[dict[str, Any]] = []

    def at(day: int, hour: int = 12) -> int:
        return _ts(START + timedelta(days=day, hours=hour))

    for i, user in enumerate(subscribers):
        customer = f"cus_r{i}"
        currency = "usd" if i == 8 else "eur"
        world.customer_user[customer] = user
        sub = fake.subscription(customer=customer, user_id=str(user))
        stripe_events.append(fake.event("customer.subscription.created", sub, created=at(0, 1)))
        price = rng.choice([999, 1299, 499, 1001])
        paid = fake.invoice(
            customer=customer,
            amount_paid=price,
            currency=currency,
            subscription=sub["id"],
            paid_at=at(i % 5),
        )
        stripe_events.append(fake.event("invoice.paid", paid, created=at(i % 5)))
        net = price
        if i == 1:  # a second invoice in the month (an upgrade proration, say)
            extra = fake.invoice(
                customer=customer, amount_paid=333, subscription=sub["id"], paid_at=at(20)
            )
            stripe_events.append(fake.event("invoice.paid", extra, created=at(20)))
            net += 333
        if i == 2:  # two partial refunds of this month's charge: cumulative 300, then 500
            charge = fake.charge(customer=customer, amount=price, amount_refunded=300)
            stripe_events.append(fake.event("charge.refunded", charge, created=at(10)))
            stripe_events.append(
                fake.event("charge.refunded", dict(charge, amount_refunded=500), created=at(11))
            )
            net -= 500
        if i == 3:  # a September charge refunded in October counts in October
            charge = fake.charge(customer=customer, amount=999, amount_refunded=200)
            stripe_events.append(fake.event("charge.refunded", charge, created=at(-5)))
            stripe_events.append(
                fake.event("charge.refunded", dict(charge, amount_refunded=450), created=at(15))
            )
            net -= 250
        if i == 4:  # a refund in November belongs to November
            charge = fake.charge(customer=customer, amount=price, amount_refunded=price)
            stripe_events.append(fake.event("charge.refunded", charge, created=at(35)))
        if i == 5:  # paid in September and November only: nothing in October
            stripe_events.pop()
            for day in (-3, 33):
                other = fake.invoice(customer=customer, amount_paid=price, paid_at=at(day))
                stripe_events.append(fake.event("invoice.paid", other, created=at(day)))
            net = 0
        world.net[currency][customer] = max(0, net)

    # Delivered in a shuffled order: projections must not depend on it.
    rng.shuffle(stripe_events)
    for evt in stripe_events:
        assert await service.record(evt, source="webhook") == "appended"

    # Streams: subscriber 6 plays nothing; free listeners play too (they count pro-rata).
    lines = io.StringIO()
    for listener in [*subscribers[:6], *subscribers[7:], *free_listeners]:
        favourites = rng.sample(artists, k=rng.randint(1, 3))
        for _ in range(rng.randint(1, 12)):
            artist = rng.choice(favourites)
            day = rng.randint(-2, 32)  # a few spill into the months around
            started = START + timedelta(days=day, minutes=rng.randint(0, 1400))
            listened = rng.choice([35_000, 60_000, 12_000])  # 12 s is no stream
            session = str(uuid.uuid4())
            track = rng.choice(tracks[artist])
            for type_, offset, ms in (
                ("playback.started", 0, 0),
                ("playback.progress", 1, listened),
            ):
                lines.write(
                    json.dumps(
                        {
                            "event_id": str(uuid.uuid4()),
                            "type": type_,
                            "occurred_at": (started + timedelta(seconds=offset)).isoformat(),
                            "session_id": session,
                            "track_id": str(track),
                            "listened_ms": ms,
                            "listener_id": str(listener),
                        }
                    )
                    + "\n"
                )
            if START <= started < END and listened >= 30_000:
                world.streams[(listener, artist)] += 1
    lines.seek(0)
    ingestor = Ingestor(pay.db, pay.store, sample_rate=1.0)
    report = await import_lines(ingestor, lines)
    assert report.rejected_count == 0, report.rejected
    await LocalProjector(pay.db, pay.store).run()
    return world


def _largest_remainder(numerators: dict[uuid.UUID, int], denominator: int) -> dict[uuid.UUID, int]:
    total = sum(numerators.values()) // denominator
    paid = {a: n // denominator for a, n in numerators.items()}
    order = sorted(numerators, key=lambda a: (-(numerators[a] % denominator), str(a)))
    for a in order[: total - sum(paid.values())]:
        paid[a] += 1
    return paid


def _oracle(world: World, currency: str, model: str) -> dict[uuid.UUID, int]:
    """Integer arithmetic over one common denominator: share = 7/10."""
    per_artist: dict[uuid.UUID, int] = defaultdict(int)
    per_listener: dict[uuid.UUID, dict[uuid.UUID, int]] = defaultdict(dict)
    for (listener, artist), n in world.streams.items():
        per_artist[artist] += n
        per_listener[listener][artist] = n
    total = sum(per_artist.values())
    customers = world.net[currency]
    if model == "pro-rata":
        pool = sum(customers.values())
        nums = {a: pool * 7 * n for a, n in per_artist.items()}
        return _largest_remainder(nums, 10 * total)
    own_totals = [sum(per_listener[world.customer_user[c]].values()) for c in customers]
    denominator = 10 * math.lcm(total, *[t for t in own_totals if t])
    nums: dict[uuid.UUID, int] = {a: 0 for a in per_artist}
    leftover = 0
    for customer, net in customers.items():
        own = per_listener[world.customer_user[customer]]
        own_total = sum(own.values())
        if not own_total:
            leftover += net
            continue
        for artist, n in own.items():
            nums[artist] += net * 7 * n * (denominator // (10 * own_total))
    for artist, n in per_artist.items():
        nums[artist] += leftover * 7 * n * (denominator // (10 * total))
    return _largest_remainder(nums, denominator)


async def _statement(pay: Container, model: str) -> dict[str, dict[uuid.UUID, int]]:
    statements = await month_statements(pay.db, MONTH, model, SHARE)  # type: ignore[arg-type]
    return {s.currency: {a.artist_id: a.amount_minor for a in s.artists} for s in statements}


async def test_both_models_match_an_independent_calculation_to_the_cent(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    world = await _generate(pay, fake, admin_conn, seed=19)
    for model in ("pro-rata", "user-centric"):
        statement = await _statement(pay, model)
        assert set(statement) == {"eur", "usd"}
        for currency in ("eur", "usd"):
            expected = _oracle(world, currency, model)
            got = statement[currency]
            assert {a: v for a, v in got.items() if v or a in expected} == expected, (
                model,
                currency,
            )
            # No cent unassigned: the artists get floor(net x share) exactly.
            assert sum(got.values()) == sum(world.net[currency].values()) * 7 // 10
    pro_rata, user_centric = (
        await _statement(pay, "pro-rata"),
        await _statement(pay, "user-centric"),
    )
    assert pro_rata["eur"] != user_centric["eur"]


async def test_a_rebuild_from_the_log_gives_the_same_statement_cent_for_cent(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    await _generate(pay, fake, admin_conn, seed=7)
    before = {m: await _statement(pay, m) for m in ("pro-rata", "user-centric")}
    # Damage the read models: only the log can put them right.
    await admin_conn.execute("UPDATE lufy.payment_ledger SET amount_minor = amount_minor + 1")
    await admin_conn.execute("DELETE FROM lufy.payment_customers")
    damaged = await _statement(pay, "user-centric")
    assert damaged != before["user-centric"]
    for projection in (LEDGER, ENTITLEMENTS):
        result = await rebuild(pay.settings.DATABASE_URL, projection, store=pay.store)
        assert result.events_applied > 0
    after = {m: await _statement(pay, m) for m in ("pro-rata", "user-centric")}
    assert after == before


async def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True)


async def test_the_statement_command_prints_the_same_numbers_as_csv_and_json(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    await _generate(pay, fake, admin_conn, seed=3)
    expected = await _statement(pay, "user-centric")
    s = pay.settings
    env = dict(
        os.environ,
        DATABASE_URL=s.DATABASE_URL,
        DATABASE_ADMIN_URL=s.DATABASE_ADMIN_URL,
        REDIS_URL=s.REDIS_URL,
        LUFY_ENV="test",
        ROYALTY_ARTIST_SHARE=str(SHARE),
    )
    cmd = [
        sys.executable,
        "-m",
        "lufy.cli",
        "royalties",
        "statement",
        "2026-10",
        "--model",
        "user-centric",
    ]
    as_json = await _run([*cmd, "--format", "json"], env)
    as_csv = await _run(cmd, env)
    bad = await _run([*cmd[:5], "2026-13"], env)
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["model"] == "user-centric"
    from_json = {
        st["currency"]: {uuid.UUID(a["artist_id"]): a["amount_minor"] for a in st["artists"]}
        for st in document["statements"]
    }
    assert from_json == expected
    rows = [line.split(",") for line in as_csv.stdout.strip().splitlines()]
    assert rows[0] == ["month", "model", "currency", "artist_id", "streams", "amount_minor"]
    from_csv: dict[str, dict[uuid.UUID, int]] = defaultdict(dict)
    for _month, _model, currency, artist, _streams, amount in rows[1:]:
        from_csv[currency][uuid.UUID(artist)] = int(amount)
    assert from_csv == expected
    assert bad.returncode == 2
    assert "YYYY-MM" in bad.stderr


async def test_an_artist_sees_the_closed_months_royalties_as_final_and_a_part_month_prorated(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    artist = await create_user(pay, role="artist")
    listener = await create_user(pay, role="listener")
    world = await _generate(pay, fake, admin_conn, seed=11, artists=[artist.id])
    statement = await _statement(pay, "pro-rata")
    month_streams = sum(n for (_l, a), n in world.streams.items() if a == artist.id)
    assert month_streams > 0
    async with api_client(pay) as client:
        month = await client.get(
            "/api/dashboard/revenue?from=2026-10-01&to=2026-10-31", headers=artist.headers
        )
        half = await client.get(
            "/api/dashboard/revenue?from=2026-10-01T00:00:00Z&to=2026-10-16T00:00:00Z",
            headers=artist.headers,
        )
        forbidden = await client.get("/api/dashboard/revenue", headers=listener.headers)
        other = await client.get(
            f"/api/dashboard/revenue?artist_id={world.artists[1]}", headers=artist.headers
        )
        bad = await client.get("/api/dashboard/revenue?range=3x", headers=artist.headers)
    assert month.status_code == 200, month.text
    body = month.json()
    assert body["currency"] == "eur"
    assert body["amount_minor"] == statement["eur"][artist.id]
    assert body["final"] is True
    assert body["streams"] == month_streams
    assert body["previous"]["final"] is True
    # The first half of October: the month's amount times the share of its streams in it.
    part = half.json()
    assert 0 <= part["streams"] <= month_streams
    expected = Fraction(statement["eur"][artist.id]) * Fraction(int(part["streams"]), month_streams)
    assert part["amount_minor"] == int(expected + Fraction(1, 2))
    assert forbidden.status_code == other.status_code == 403
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")


async def test_the_running_month_is_an_estimate(pay: Container) -> None:
    artist = await create_user(pay, role="artist")
    async with api_client(pay) as client:
        response = await client.get("/api/dashboard/revenue?range=7d", headers=artist.headers)
    assert response.status_code == 200
    assert response.json()["final"] is False
    assert response.json()["amount_minor"] == 0
