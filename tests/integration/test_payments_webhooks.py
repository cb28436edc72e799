"""Payments over HTTP against a local fake of Stripe's API: webhooks into the log (once each,
verified, in any order), checkout, portal, the caller's subscription, resync, and 503 without
Stripe configured."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from lufy.bootstrap import Container, bootstrap
from lufy.payments.entitlements import plan_of
from lufy.payments.model import event_uuid
from lufy.settings import Settings
from tests.helpers.accounts import create_user
from tests.helpers.http import api_client
from tests.helpers.stripe_fake import WEBHOOK_SECRET, StripeFake, sign_payload, with_stripe

WEBHOOK = "/api/payments/webhook"


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    with StripeFake() as server:
        yield server


@pytest.fixture
def pay_settings(settings: Settings, fake: StripeFake) -> Settings:
    return with_stripe(settings, fake)


@pytest.fixture
async def pay(pay_settings: Settings) -> AsyncIterator[Container]:
    c = bootstrap(pay_settings)
    await c.start()
    yield c
    await c.stop()


async def _payment_events(admin: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    cur = await admin.execute(
        "SELECT event_id, type, stream_id, data FROM lufy.events "
        "WHERE type LIKE 'payments.%' ORDER BY global_position"
    )
    return await cur.fetchall()


async def _plan(container: Container, user_id: uuid.UUID, now: datetime) -> str:
    async with container.db.transaction(user_id=user_id, role="listener") as conn:
        return await plan_of(conn, user_id, now)


async def test_a_valid_webhook_appends_one_event_and_makes_the_listener_premium_at_once(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    user = await create_user(pay, role="listener")
    sub = fake.subscription(customer="cus_a", user_id=str(user.id))
    evt = fake.event("customer.subscription.created", sub)
    body, headers = fake.signed(evt)
    async with api_client(pay) as client:
        before = await client.get("/api/payments/subscription", headers=user.headers)
        response = await client.post(WEBHOOK, content=body, headers=headers)
        after = await client.get("/api/payments/subscription", headers=user.headers)
    assert before.json()["plan"] == "free"
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "appended"
    rows = await _payment_events(admin_conn)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (event_uuid(evt["id"]), "payments.subscription_changed", "cus_a")
    ]
    cur = await admin_conn.execute(
        "SELECT metadata->>'causation_id', metadata->>'correlation_id', occurred_at "
        "FROM lufy.events WHERE type LIKE 'payments.%'"
    )
    causation, correlation, occurred_at = (await cur.fetchall())[0]
    assert causation == evt["id"]
    assert correlation == response.headers["x-correlation-id"]
    assert occurred_at == datetime.fromtimestamp(evt["created"], UTC)
    view = after.json()
    assert view["plan"] == "premium"
    assert view["status"] == "active"
    assert view["cancel_at_period_end"] is False
    end = datetime.fromisoformat(view["current_period_end"])
    assert end == datetime.fromtimestamp(sub["current_period_end"], UTC)


async def test_one_event_delivered_three_times_and_concurrently_is_appended_once(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    sub = fake.subscription(customer="cus_b", user_id=str(uuid.uuid4()))
    evt = fake.event("customer.subscription.created", sub)
    other = fake.event("invoice.paid", fake.invoice(customer="cus_b", amount_paid=999))
    async with api_client(pay) as client:
        sequential = []
        for _ in range(3):
            body, headers = fake.signed(evt)
            sequential.append(await client.post(WEBHOOK, content=body, headers=headers))
        deliveries = [fake.signed(other) for _ in range(3)]
        concurrent = await asyncio.gather(
            *(client.post(WEBHOOK, content=b, headers=h) for b, h in deliveries)
        )
    assert [r.status_code for r in [*sequential, *concurrent]] == [200] * 6
    assert [r.json()["outcome"] for r in sequential] == ["appended", "duplicate", "duplicate"]
    assert sorted(r.json()["outcome"] for r in concurrent) == ["appended", "duplicate", "duplicate"]
    rows = await _payment_events(admin_conn)
    assert sorted(r[0] for r in rows) == sorted([event_uuid(evt["id"]), event_uuid(other["id"])])
    cur = await admin_conn.execute("SELECT count(*) FROM lufy.payment_ledger")
    assert await cur.fetchone() == (1,)


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "expired timestamp", "body changed", "no header", "not a signature"],
)
async def test_a_webhook_without_a_valid_fresh_signature_is_refused_and_nothing_is_written(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any], tamper: str
) -> None:
    evt = fake.event("customer.subscription.created", fake.subscription(customer="cus_c"))
    if tamper == "wrong secret":
        body, headers = fake.signed(evt, secret="whsec_someone_else")
    elif tamper == "expired timestamp":
        body, headers = fake.signed(evt, timestamp=int(time.time()) - 301)
    elif tamper == "body changed":
        body, headers = fake.signed(evt)
        body = body.replace(b'"active"', b'"trialing"')
    elif tamper == "no header":
        body, headers = fake.signed(evt)
        del headers["Stripe-Signature"]
    else:
        body, headers = fake.signed(evt)
        headers["Stripe-Signature"] = "garbage"
    async with api_client(pay) as client:
        response = await client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400
    assert "Stripe-Signature" in problem["detail"] or "signature" in problem["detail"].lower()
    assert await _payment_events(admin_conn) == []
    cur = await admin_conn.execute("SELECT count(*) FROM lufy.payment_subscriptions")
    assert await cur.fetchone() == (0,)


async def test_a_signature_four_minutes_old_is_still_accepted(
    pay: Container, fake: StripeFake
) -> None:
    evt = fake.event("customer.subscription.created", fake.subscription(customer="cus_d"))
    body, headers = fake.signed(evt, timestamp=int(time.time()) - 240)
    async with api_client(pay) as client:
        response = await client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 200


async def test_unknown_event_types_are_acknowledged_and_not_written(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    evt = fake.event("customer.created", {"id": "cus_e", "object": "customer"})
    body, headers = fake.signed(evt)
    async with api_client(pay) as client:
        response = await client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert await _payment_events(admin_conn) == []


async def _deliver(container: Container, fake: StripeFake, events: list[dict[str, Any]]) -> None:
    async with api_client(container) as client:
        for evt in events:
            body, headers = fake.signed(evt)
            response = await client.post(WEBHOOK, content=body, headers=headers)
            assert response.status_code == 200, response.text


async def test_an_update_delivered_before_its_creation_ends_in_the_updated_state(
    pay: Container, fake: StripeFake
) -> None:
    user = await create_user(pay, role="listener")
    t = int(time.time())
    sub = fake.subscription(customer="cus_f", user_id=str(user.id))
    created = fake.event("customer.subscription.created", dict(sub, status="active"), created=t)
    unpaid = fake.event("customer.subscription.updated", dict(sub, status="unpaid"), created=t + 5)
    await _deliver(pay, fake, [unpaid, created])
    assert await _plan(pay, user.id, datetime.now(UTC)) == "free"
    # Same second: created < updated < deleted.
    sub2 = fake.subscription(customer="cus_g", user_id=str(user.id))
    deleted = fake.event("customer.subscription.deleted", dict(sub2, status="canceled"), created=t)
    created2 = fake.event("customer.subscription.created", dict(sub2, status="active"), created=t)
    await _deliver(pay, fake, [deleted, created2])
    async with pay.db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT subscription_id, status FROM lufy.payment_subscriptions ORDER BY 1"
        )
        states = dict(await cur.fetchall())
    assert states == {sub["id"]: "unpaid", sub2["id"]: "canceled"}


async def test_a_subscription_seen_before_its_checkout_belongs_to_the_user_once_checkout_arrives(
    pay: Container, fake: StripeFake
) -> None:
    user = await create_user(pay, role="listener")
    sub = fake.subscription(customer="cus_h")  # no metadata: only the checkout names the user
    paid = fake.event("invoice.paid", fake.invoice(customer="cus_h", amount_paid=999))
    updated = fake.event("customer.subscription.updated", sub)
    completed = fake.event(
        "checkout.session.completed",
        fake.checkout_session(customer="cus_h", user_id=str(user.id), subscription=sub["id"]),
    )
    await _deliver(pay, fake, [paid, updated])
    assert await _plan(pay, user.id, datetime.now(UTC)) == "free"
    await _deliver(pay, fake, [completed])
    assert await _plan(pay, user.id, datetime.now(UTC)) == "premium"


async def test_a_canceled_subscription_stays_premium_until_the_end_of_its_paid_period(
    pay: Container, fake: StripeFake
) -> None:
    user = await create_user(pay, role="listener")
    end = int(time.time()) + 10 * 86400
    sub = fake.subscription(customer="cus_i", user_id=str(user.id), period_end=end)
    t = int(time.time())
    await _deliver(
        pay,
        fake,
        [
            fake.event("customer.subscription.created", sub, created=t - 10),
            fake.event(
                "customer.subscription.updated", dict(sub, cancel_at_period_end=True), created=t - 5
            ),
            fake.event("customer.subscription.deleted", dict(sub, status="canceled"), created=t),
        ],
    )
    period_end = datetime.fromtimestamp(end, UTC)
    assert await _plan(pay, user.id, period_end - timedelta(seconds=1)) == "premium"
    assert await _plan(pay, user.id, period_end) == "free"


async def test_a_past_due_subscription_keeps_premium_for_the_grace_days_only(
    pay: Container, fake: StripeFake
) -> None:
    user = await create_user(pay, role="listener")
    sub = fake.subscription(customer="cus_j", user_id=str(user.id))
    t = int(time.time())
    await _deliver(
        pay,
        fake,
        [
            fake.event("customer.subscription.created", sub, created=t - 100),
            fake.event("customer.subscription.updated", dict(sub, status="past_due"), created=t),
            # A later past_due update does not restart the grace period.
            fake.event(
                "customer.subscription.updated", dict(sub, status="past_due"), created=t + 50
            ),
        ],
    )
    since = datetime.fromtimestamp(t, UTC)
    assert await _plan(pay, user.id, since + timedelta(days=3, seconds=-1)) == "premium"
    assert await _plan(pay, user.id, since + timedelta(days=3)) == "free"


async def test_the_grace_period_starts_where_the_last_past_due_run_began_in_any_delivery_order(
    pay: Container, fake: StripeFake
) -> None:
    user = await create_user(pay, role="listener")
    sub = fake.subscription(customer="cus_jj", user_id=str(user.id))
    t = int(time.time())
    created = fake.event("customer.subscription.created", sub, created=t - 100)
    first_due = fake.event("customer.subscription.updated", dict(sub, status="past_due"), created=t)
    recovered = fake.event("customer.subscription.updated", sub, created=t + 20)
    due_again = fake.event(
        "customer.subscription.updated", dict(sub, status="past_due"), created=t + 50
    )
    still_due = fake.event(
        "customer.subscription.updated", dict(sub, status="past_due"), created=t + 80
    )
    await _deliver(pay, fake, [still_due, first_due, due_again, created, recovered])
    since = datetime.fromtimestamp(t + 50, UTC)
    assert await _plan(pay, user.id, since + timedelta(days=3, seconds=-1)) == "premium"
    assert await _plan(pay, user.id, since + timedelta(days=3)) == "free"


async def test_checkout_opens_a_stripe_session_for_the_caller_and_refuses_a_second_one(
    pay: Container, fake: StripeFake
) -> None:
    user = await create_user(pay, role="listener")
    async with api_client(pay) as client:
        first = await client.post("/api/payments/checkout", headers=user.headers)
        assert first.status_code == 201, first.text
        await _deliver(
            pay,
            fake,
            [
                fake.event(
                    "customer.subscription.created",
                    fake.subscription(customer="cus_k", user_id=str(user.id)),
                )
            ],
        )
        second = await client.post("/api/payments/checkout", headers=user.headers)
    session = first.json()
    assert session["session_id"].startswith("cs_")
    assert session["url"].endswith(session["session_id"])
    _method, _path, params = next(r for r in fake.requests if r[1] == "/v1/checkout/sessions")
    assert params["mode"] == "subscription"
    assert params["client_reference_id"] == str(user.id)
    assert params["line_items[0][price]"] == "price_premium"
    assert params["subscription_data[metadata][lufy_user_id]"] == str(user.id)
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")


async def test_the_billing_portal_opens_for_a_known_customer_only(
    pay: Container, fake: StripeFake
) -> None:
    user = await create_user(pay, role="listener")
    async with api_client(pay) as client:
        before = await client.post("/api/payments/portal", headers=user.headers)
        await _deliver(
            pay,
            fake,
            [
                fake.event(
                    "checkout.session.completed",
                    fake.checkout_session(customer="cus_l", user_id=str(user.id)),
                )
            ],
        )
        after = await client.post("/api/payments/portal", headers=user.headers)
    assert before.status_code == 409
    assert after.status_code == 201, after.text
    assert after.json()["url"].startswith("https://billing.stripe.com/")
    assert any(
        r[1] == "/v1/billing_portal/sessions" and r[2]["customer"] == "cus_l" for r in fake.requests
    )


async def test_payment_routes_answer_503_when_stripe_is_not_configured(
    container: Container, fake: StripeFake
) -> None:
    user = await create_user(container, role="listener")
    body, headers = fake.signed(fake.event("customer.subscription.created", {"id": "sub_x"}))
    async with api_client(container) as client:
        responses = [
            await client.post("/api/payments/checkout", headers=user.headers),
            await client.post("/api/payments/portal", headers=user.headers),
            await client.get("/api/payments/subscription", headers=user.headers),
            await client.post(WEBHOOK, content=body, headers=headers),
        ]
        health = await client.get("/healthz")
    for response in responses:
        assert response.status_code == 503
        assert "payments are not configured" in response.json()["detail"]
    assert health.status_code == 200


async def test_resync_appends_what_webhooks_missed_and_is_idempotent(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    t = int(time.time())
    sub = fake.subscription(customer="cus_m", user_id=str(uuid.uuid4()))
    delivered = fake.event("customer.subscription.created", sub, created=t - 100)
    await _deliver(pay, fake, [delivered])
    missed = [
        fake.event("invoice.paid", fake.invoice(customer="cus_m", amount_paid=500), created=t - 50)
        for _ in range(120)  # more than one page of the events list
    ]
    fake.event("customer.updated", {"id": "cus_m", "object": "customer"}, created=t - 40)
    first = await pay.payments.resync(None)
    second = await pay.payments.resync(datetime.fromtimestamp(t - 200, UTC))
    assert (first.listed, first.appended, first.duplicates, first.ignored) == (122, 120, 1, 1)
    assert (second.appended, second.duplicates) == (0, 121)
    ids = {r[0] for r in await _payment_events(admin_conn)}
    assert ids == {event_uuid(e["id"]) for e in [delivered, *missed]}
    data = json.loads(json.dumps([r[3] for r in await _payment_events(admin_conn)]))
    assert sum(d.get("amount_paid", 0) for d in data) == 120 * 500


async def test_a_burst_of_webhooks_from_one_address_is_not_held_to_the_guest_limit(
    pay: Container, fake: StripeFake
) -> None:
    guest_limit = pay.settings.rate_limit_guest.limit
    events = [
        fake.event("customer.subscription.created", fake.subscription(customer=f"cus_z{i}"))
        for i in range(guest_limit + 5)
    ]
    async with api_client(pay) as client:
        statuses = []
        for evt in events:
            body, headers = fake.signed(evt)
            statuses.append((await client.post(WEBHOOK, content=body, headers=headers)).status_code)
        # An ordinary guest route from the same address still has the guest policy.
        guest = await client.get("/api/payments/subscription")
    assert statuses == [200] * len(events)
    assert guest.status_code == 401
    assert '"guest"' in guest.headers["ratelimit-policy"]


async def _lufy(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lufy.cli", *args]
    return await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True)


async def test_the_resync_command_appends_missed_events_once_and_refuses_a_bad_date(
    pay: Container, fake: StripeFake, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    t = int(time.time())
    old = fake.event(
        "invoice.paid", fake.invoice(customer="cus_n", amount_paid=1), created=t - 9 * 86400
    )
    new = fake.event("invoice.paid", fake.invoice(customer="cus_n", amount_paid=2), created=t)
    s = pay.settings
    env = dict(
        os.environ,
        DATABASE_URL=s.DATABASE_URL,
        DATABASE_ADMIN_URL=s.DATABASE_ADMIN_URL,
        REDIS_URL=s.REDIS_URL,
        LUFY_ENV="test",
        STRIPE_SECRET_KEY="sk_test_cli",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=fake.url,
    )
    since = datetime.fromtimestamp(t - 86400, UTC).date().isoformat()
    first = await _lufy(["payments", "resync", "--since", since], env)
    again = await _lufy(["payments", "resync", "--since", since], env)
    bad = await _lufy(["payments", "resync", "--since", "last tuesday"], env)
    assert first.returncode == 0, first.stderr
    assert "1 appended" in first.stderr
    assert "0 appended, 1 already in the log" in again.stderr
    assert {r[0] for r in await _payment_events(admin_conn)} == {event_uuid(new["id"])}
    assert old["id"] != new["id"]
    assert bad.returncode == 2
    assert "--since" in bad.stderr


async def test_an_unreachable_stripe_answers_503_and_changes_nothing(
    pay_settings: Settings, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    c = bootstrap(
        pay_settings.model_copy(update={"STRIPE_API_BASE": f"http://127.0.0.1:{closed_port}"})
    )
    await c.start()
    try:
        user = await create_user(c, role="listener")
        async with api_client(c) as client:
            response = await client.post("/api/payments/checkout", headers=user.headers)
    finally:
        await c.stop()
    assert response.status_code == 503
    assert response.json()["title"] == "Payment provider unavailable"
    assert await _payment_events(admin_conn) == []


async def test_a_listener_reads_only_their_own_subscription_and_no_money_rows(
    pay: Container, fake: StripeFake
) -> None:
    ana = await create_user(pay, role="listener")
    ben = await create_user(pay, role="listener")
    await _deliver(
        pay,
        fake,
        [
            fake.event(
                "customer.subscription.created",
                fake.subscription(customer="cus_o", user_id=str(ana.id)),
            ),
            fake.event(
                "customer.subscription.created",
                fake.subscription(customer="cus_p", user_id=str(ben.id)),
            ),
            fake.event("invoice.paid", fake.invoice(customer="cus_o", amount_paid=999)),
        ],
    )
    async with pay.db.transaction(user_id=ana.id, role="listener") as conn:
        cur = await conn.execute("SELECT customer_id FROM lufy.payment_subscriptions")
        subscriptions = await cur.fetchall()
        cur = await conn.execute("SELECT count(*) FROM lufy.payment_ledger")
        ledger = await cur.fetchone()
        cur = await conn.execute(
            "UPDATE lufy.payment_subscriptions SET status = 'canceled' WHERE customer_id = 'cus_p'"
        )
        updated = cur.rowcount
    assert subscriptions == [("cus_o",)]
    assert ledger == (0,)
    assert updated == 0
    assert await _plan(pay, ben.id, datetime.now(UTC)) == "premium"


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b'["a list"]', b'{"id": "evt_1", "type": "invoice.paid", "data": {}}'],
)
async def test_a_correctly_signed_body_that_is_no_stripe_event_is_refused_and_not_written(
    pay: Container, admin_conn: psycopg.AsyncConnection[Any], body: bytes
) -> None:
    headers = {"Stripe-Signature": sign_payload(body), "Content-Type": "application/json"}
    async with api_client(pay) as client:
        response = await client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["title"] == "Invalid webhook payload"
    assert await _payment_events(admin_conn) == []
