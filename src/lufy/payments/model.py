"""The pure side of payments: Stripe events into Lufy events, entitlements, royalty splits.

No I/O here: the clock, the grace period and the artist share are passed in.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal, TypeVar

from lufy.eventstore.envelope import Event
from lufy.payments.events import (
    ChargeRefunded,
    CheckoutCompleted,
    InvoicePaid,
    SubscriptionChanged,
)

__all__ = [
    "PREMIUM_STATUSES",
    "ArtistLine",
    "Model",
    "Plan",
    "Statement",
    "Subscriber",
    "event_uuid",
    "largest_remainder",
    "plan_for",
    "snapshot_rank",
    "split_royalties",
    "translate",
]

Plan = Literal["free", "premium"]
Model = Literal["pro-rata", "user-centric"]
K = TypeVar("K", bound=Hashable)

PREMIUM_STATUSES = frozenset({"active", "trialing"})
# Fixed namespace: the log's event id of a Stripe event is uuid5(namespace, Stripe's id), so the
# same Stripe event always maps to the same Lufy event id, on any machine.
_NAMESPACE = uuid.UUID("6f1d3c52-8d0e-5b7a-9c1e-3a5f2b8e4d71")
# Within one second (Stripe's `created` resolution) a subscription's life goes this way.
_RANK = {
    "customer.subscription.created": 0,
    "customer.subscription.updated": 1,
    "customer.subscription.paused": 1,
    "customer.subscription.resumed": 1,
    "customer.subscription.deleted": 2,
}


def event_uuid(stripe_event_id: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"stripe:{stripe_event_id}")


def snapshot_rank(stripe_type: str) -> int:
    return _RANK.get(stripe_type, 1)


# --- Stripe event -> Lufy event ---------------------------------------------------------------


def _ts(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), UTC)


def _id(value: Any) -> str | None:
    """Stripe fields that may be an id or an expanded object."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return str(value["id"])
    return str(value)


def _user(metadata: Any) -> uuid.UUID | None:
    if not isinstance(metadata, Mapping):
        return None
    raw = metadata.get("lufy_user_id")
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


def _first_item(subscription: Mapping[str, Any]) -> Mapping[str, Any]:
    items = subscription.get("items") or {}
    data = items.get("data") if isinstance(items, Mapping) else None
    return data[0] if data else {}


def _subscription(evt: Mapping[str, Any], obj: Mapping[str, Any]) -> SubscriptionChanged:
    item = _first_item(obj)
    # API versions from 2025-03-31 carry the period on the subscription's items.
    period_end = obj.get("current_period_end") or item.get("current_period_end")
    price = item.get("price") or {}
    return SubscriptionChanged(
        stripe_event_id=str(evt["id"]),
        stripe_type=str(evt["type"]),
        created=_ts(evt["created"]) or datetime.fromtimestamp(0, UTC),
        subscription_id=str(obj["id"]),
        customer_id=_id(obj["customer"]) or "",
        status=str(obj["status"]),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end") or False),
        current_period_end=_ts(period_end),
        price_id=_id(price) if price else None,
        user_id=_user(obj.get("metadata")),
    )


def _invoice(evt: Mapping[str, Any], obj: Mapping[str, Any]) -> InvoicePaid:
    parent = obj.get("parent") or {}
    details = obj.get("subscription_details") or parent.get("subscription_details") or {}
    subscription = obj.get("subscription") or details.get("subscription")
    transitions = obj.get("status_transitions") or {}
    created = _ts(evt["created"]) or datetime.fromtimestamp(0, UTC)
    return InvoicePaid(
        stripe_event_id=str(evt["id"]),
        created=created,
        invoice_id=str(obj["id"]),
        customer_id=_id(obj["customer"]) or "",
        amount_paid=int(obj["amount_paid"]),
        currency=str(obj["currency"]).lower(),
        paid_at=_ts(transitions.get("paid_at")) or created,
        subscription_id=_id(subscription),
        user_id=_user(details.get("metadata")),
    )


def _charge(evt: Mapping[str, Any], obj: Mapping[str, Any]) -> ChargeRefunded:
    return ChargeRefunded(
        stripe_event_id=str(evt["id"]),
        created=_ts(evt["created"]) or datetime.fromtimestamp(0, UTC),
        charge_id=str(obj["id"]),
        customer_id=_id(obj.get("customer")) or "",
        amount_refunded=int(obj["amount_refunded"]),
        currency=str(obj["currency"]).lower(),
        invoice_id=_id(obj.get("invoice")),
    )


def _checkout(evt: Mapping[str, Any], obj: Mapping[str, Any]) -> CheckoutCompleted | None:
    customer = _id(obj.get("customer"))
    if customer is None or obj.get("mode") not in (None, "subscription"):
        return None
    reference = obj.get("client_reference_id")
    try:
        user_id = uuid.UUID(str(reference)) if reference else _user(obj.get("metadata"))
    except ValueError:
        user_id = _user(obj.get("metadata"))
    return CheckoutCompleted(
        stripe_event_id=str(evt["id"]),
        created=_ts(evt["created"]) or datetime.fromtimestamp(0, UTC),
        session_id=str(obj["id"]),
        customer_id=customer,
        user_id=user_id,
        subscription_id=_id(obj.get("subscription")),
    )


def translate(evt: Mapping[str, Any]) -> Event | None:
    """The Lufy event for a Stripe event, or None for a type Lufy does not use."""
    kind = str(evt.get("type", ""))
    obj = (evt.get("data") or {}).get("object") or {}
    if kind.startswith("customer.subscription.") and kind != "customer.subscription.trial_will_end":
        return _subscription(evt, obj)
    if kind == "invoice.paid":
        return _invoice(evt, obj)
    if kind == "charge.refunded":
        return _charge(evt, obj)
    if kind == "checkout.session.completed":
        return _checkout(evt, obj)
    return None


# --- Entitlements -----------------------------------------------------------------------------


def plan_for(
    *,
    status: str,
    current_period_end: datetime | None,
    past_due_since: datetime | None,
    now: datetime,
    grace_days: int,
) -> Plan:
    """Premium while active or trialing; a canceled subscription until the end of the period it
    was paid for; past_due for `grace_days` after it became past due; otherwise free."""
    if status in PREMIUM_STATUSES:
        return "premium"
    if status == "canceled":
        return "premium" if current_period_end is not None and now < current_period_end else "free"
    if status == "past_due" and past_due_since is not None:
        return "premium" if now < past_due_since + timedelta(days=grace_days) else "free"
    return "free"


# --- Royalties --------------------------------------------------------------------------------


def largest_remainder(exact: Mapping[K, Fraction], total: int) -> dict[K, int]:
    """Integer amounts summing to `total` (at most the sum of `exact`, floored): each key gets the
    floor of its exact amount, and the cents left go one each to the largest remainders (ties by
    key, so the result never depends on dict order)."""
    floors = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(floors.values())
    if left < 0 or left > len(exact):
        raise ValueError("total is not reachable from the exact amounts")
    order = sorted(exact, key=lambda k: (-(exact[k] - floors[k]), str(k)))
    for k in order[:left]:
        floors[k] += 1
    return floors


@dataclass(frozen=True)
class Subscriber:
    """One paying customer's month: net revenue (minor units, never below 0) and streams."""

    key: str
    net_minor: int
    streams: Mapping[uuid.UUID, Fraction] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtistLine:
    artist_id: uuid.UUID
    streams: Fraction
    amount_minor: int


@dataclass(frozen=True)
class Statement:
    currency: str
    model: Model
    net_revenue_minor: int
    pool_minor: int
    # The pool that no stream could carry (a month with no streams at all).
    unallocated_minor: int
    artists: list[ArtistLine]


def split_royalties(
    *,
    currency: str,
    model: Model,
    subscribers: Iterable[Subscriber],
    streams: Mapping[uuid.UUID, Fraction],
    share: Decimal,
) -> Statement:
    """The month's statement in one currency.

    `streams` are all verified streams per artist (every listener); each subscriber carries their
    own. pro-rata: the pool (net revenue x share) by each artist's share of all streams.
    user-centric: each subscriber's net x share by their own streams; a subscriber without
    streams goes to a remainder split pro-rata. Both pay out floor(pool) in total, to the cent.
    """
    subs = list(subscribers)
    rate = Fraction(share)
    net = sum(s.net_minor for s in subs)
    pool = Fraction(net) * rate
    total_streams = sum(streams.values(), Fraction(0))
    exact: dict[uuid.UUID, Fraction] = {a: Fraction(0) for a in streams}

    def pro_rata(amount: Fraction) -> None:
        if total_streams > 0:
            for artist, n in streams.items():
                exact[artist] += amount * n / total_streams

    if model == "pro-rata":
        pro_rata(pool)
    else:
        remainder = Fraction(0)
        for sub in subs:
            own = sum(sub.streams.values(), Fraction(0))
            if own <= 0:
                remainder += Fraction(sub.net_minor) * rate
                continue
            for artist, n in sub.streams.items():
                exact[artist] = exact.get(artist, Fraction(0)) + (
                    Fraction(sub.net_minor) * rate * n / own
                )
        pro_rata(remainder)
    paid_exact = sum(exact.values(), Fraction(0))
    paid = largest_remainder(exact, math.floor(paid_exact)) if exact else {}
    pool_minor = math.floor(pool)
    lines = [
        ArtistLine(artist_id=a, streams=streams.get(a, Fraction(0)), amount_minor=paid[a])
        for a in sorted(exact, key=lambda a: (-paid[a], str(a)))
    ]
    return Statement(
        currency=currency,
        model=model,
        net_revenue_minor=net,
        pool_minor=pool_minor,
        unallocated_minor=pool_minor - sum(paid.values()),
        artists=lines,
    )
