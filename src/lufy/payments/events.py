"""Payments events: Stripe's facts, as Lufy records them (one per Stripe event, never twice).

Every event carries the Stripe event's id and its `created` time: the log's `event_id` is derived
from the Stripe id (so a redelivery writes nothing), and projections order a subscription's
snapshots by `created`, so a delivery that arrives late never overwrites a newer state. Events
go to the stream `stripe_customer/{customer_id}`: one subscriber's money history, in one place.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lufy.eventstore.envelope import Event

__all__ = [
    "EVENTS",
    "STREAM_TYPE",
    "ChargeRefunded",
    "CheckoutCompleted",
    "InvoicePaid",
    "SubscriptionChanged",
]

STREAM_TYPE = "stripe_customer"


class CheckoutCompleted(Event, frozen=True, tag="payments.checkout_completed"):
    """`checkout.session.completed`: ties a Stripe customer to a Lufy user."""

    stripe_event_id: str
    created: datetime
    session_id: str
    customer_id: str
    user_id: uuid.UUID | None = None
    subscription_id: str | None = None


class SubscriptionChanged(Event, frozen=True, tag="payments.subscription_changed"):
    """`customer.subscription.*`: the subscription as Stripe described it at `created`."""

    stripe_event_id: str
    stripe_type: str
    created: datetime
    subscription_id: str
    customer_id: str
    status: str
    cancel_at_period_end: bool = False
    current_period_end: datetime | None = None
    price_id: str | None = None
    # From the subscription's metadata (set at checkout), when present.
    user_id: uuid.UUID | None = None


class InvoicePaid(Event, frozen=True, tag="payments.invoice_paid"):
    """`invoice.paid`: money received, in the currency's minor unit."""

    stripe_event_id: str
    created: datetime
    invoice_id: str
    customer_id: str
    amount_paid: int
    currency: str
    paid_at: datetime
    subscription_id: str | None = None
    user_id: uuid.UUID | None = None


class ChargeRefunded(Event, frozen=True, tag="payments.charge_refunded"):
    """`charge.refunded`: `amount_refunded` is the charge's cumulative refunded amount."""

    stripe_event_id: str
    created: datetime
    charge_id: str
    customer_id: str
    amount_refunded: int
    currency: str
    invoice_id: str | None = None


EVENTS = (CheckoutCompleted, SubscriptionChanged, InvoicePaid, ChargeRefunded)
