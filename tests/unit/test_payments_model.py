"""Payments, the pure side: Stripe events into Lufy events, plans, and royalty splits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from lufy.payments.events import ChargeRefunded, InvoicePaid, SubscriptionChanged
from lufy.payments.model import (
    Subscriber,
    event_uuid,
    largest_remainder,
    plan_for,
    split_royalties,
    translate,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
A, B, C = (uuid.UUID(int=i) for i in (1, 2, 3))


def _evt(type_: str, obj: dict[str, object], created: int = 1_765_000_000) -> dict[str, object]:
    return {
        "id": "evt_1",
        "object": "event",
        "type": type_,
        "created": created,
        "data": {"object": obj},
    }


def test_the_same_stripe_event_always_maps_to_the_same_log_event_id() -> None:
    assert event_uuid("evt_123") == event_uuid("evt_123")
    assert event_uuid("evt_123") != event_uuid("evt_124")


def test_a_subscription_event_reads_the_period_from_its_items_on_new_api_versions() -> None:
    user = uuid.uuid4()
    obj = {
        "id": "sub_1",
        "customer": "cus_1",
        "status": "active",
        "cancel_at_period_end": True,
        "metadata": {"lufy_user_id": str(user)},
        "items": {"data": [{"current_period_end": 1_767_000_000, "price": {"id": "price_p"}}]},
    }
    event = translate(_evt("customer.subscription.updated", obj))
    assert isinstance(event, SubscriptionChanged)
    assert event.user_id == user
    assert event.cancel_at_period_end is True
    assert event.price_id == "price_p"
    assert event.current_period_end == datetime.fromtimestamp(1_767_000_000, UTC)


def test_an_invoice_finds_its_subscription_under_parent_on_new_api_versions() -> None:
    obj = {
        "id": "in_1",
        "customer": "cus_1",
        "amount_paid": 999,
        "currency": "EUR",
        "status_transitions": {"paid_at": 1_765_000_100},
        "parent": {"subscription_details": {"subscription": "sub_9", "metadata": {}}},
    }
    event = translate(_evt("invoice.paid", obj))
    assert isinstance(event, InvoicePaid)
    assert (event.subscription_id, event.currency, event.amount_paid) == ("sub_9", "eur", 999)
    assert event.paid_at == datetime.fromtimestamp(1_765_000_100, UTC)


def test_a_refund_keeps_the_charges_cumulative_refunded_amount() -> None:
    obj = {"id": "ch_1", "customer": "cus_1", "amount_refunded": 300, "currency": "usd"}
    event = translate(_evt("charge.refunded", obj))
    assert isinstance(event, ChargeRefunded)
    assert event.amount_refunded == 300


def test_types_lufy_does_not_use_translate_to_nothing() -> None:
    assert translate(_evt("customer.created", {"id": "cus_1"})) is None
    assert translate(_evt("payment_intent.succeeded", {"id": "pi_1"})) is None


@pytest.mark.parametrize(
    ("status", "period_end", "past_due_since", "expected"),
    [
        ("active", None, None, "premium"),
        ("trialing", NOW - timedelta(days=1), None, "premium"),
        ("canceled", NOW + timedelta(days=3), None, "premium"),
        ("canceled", NOW - timedelta(seconds=1), None, "free"),
        ("past_due", NOW + timedelta(days=20), NOW - timedelta(days=2), "premium"),
        ("past_due", NOW + timedelta(days=20), NOW - timedelta(days=3), "free"),
        ("incomplete", NOW + timedelta(days=20), None, "free"),
        ("unpaid", NOW + timedelta(days=20), None, "free"),
    ],
)
def test_a_plan_follows_the_subscription_status_the_period_and_the_grace(
    status: str, period_end: datetime | None, past_due_since: datetime | None, expected: str
) -> None:
    plan = plan_for(
        status=status,
        current_period_end=period_end,
        past_due_since=past_due_since,
        now=NOW,
        grace_days=3,
    )
    assert plan == expected


def test_largest_remainder_gives_the_left_cents_to_the_largest_fractions() -> None:
    exact = {A: Fraction(10, 3), B: Fraction(10, 3), C: Fraction(10, 3)}
    assert largest_remainder(exact, 10) == {A: 4, B: 3, C: 3}
    exact = {A: Fraction(1, 10), B: Fraction(9, 10), C: Fraction(2)}
    assert largest_remainder(exact, 3) == {A: 0, B: 1, C: 2}


def test_pro_rata_splits_the_pool_by_all_streams_to_the_cent() -> None:
    subs = [Subscriber(key="c1", net_minor=1000), Subscriber(key="c2", net_minor=1001)]
    s = split_royalties(
        currency="eur",
        model="pro-rata",
        subscribers=subs,
        streams={A: Fraction(1), B: Fraction(1), C: Fraction(1)},
        share=Decimal("0.7"),
    )
    # pool = 2001 * 0.7 = 1400.7 -> 1400 paid, 466.9 each -> 467, 467, 466
    assert s.pool_minor == 1400
    assert sorted(a.amount_minor for a in s.artists) == [466, 467, 467]
    assert s.unallocated_minor == 0


def test_user_centric_pays_each_subscribers_money_to_what_they_played() -> None:
    subs = [
        Subscriber(key="c1", net_minor=1000, streams={A: Fraction(9), B: Fraction(1)}),
        Subscriber(key="c2", net_minor=1000, streams={C: Fraction(1)}),
        Subscriber(key="c3", net_minor=1000),  # no streams: to the pro-rata remainder
    ]
    all_streams = {A: Fraction(9), B: Fraction(1), C: Fraction(10)}  # C also has free plays
    s = split_royalties(
        currency="eur",
        model="user-centric",
        subscribers=subs,
        streams=all_streams,
        share=Decimal("0.5"),
    )
    paid = {a.artist_id: a.amount_minor for a in s.artists}
    # c1: 500 -> A 450, B 50; c2: 500 -> C 500; c3: 500 by 9:1:10 -> 225, 25, 250
    assert paid == {A: 675, B: 75, C: 750}
    assert s.pool_minor == sum(paid.values()) == 1500


def test_a_month_without_streams_leaves_the_pool_unallocated_and_says_so() -> None:
    s = split_royalties(
        currency="eur",
        model="pro-rata",
        subscribers=[Subscriber(key="c1", net_minor=999)],
        streams={},
        share=Decimal("0.7"),
    )
    assert s.artists == []
    assert s.unallocated_minor == s.pool_minor == 699
