"""What the payments routes accept and return (never an event Struct)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

__all__ = [
    "CheckoutSession",
    "PortalSession",
    "Revenue",
    "RevenuePeriod",
    "SubscriptionView",
    "WebhookReceipt",
]


class CheckoutSession(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    session_id: str


class PortalSession(msgspec.Struct, frozen=True, kw_only=True):
    url: str


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    plan: Literal["free", "premium"]
    # Stripe's status of the caller's newest subscription; None when they never subscribed.
    status: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool


class WebhookReceipt(msgspec.Struct, frozen=True, kw_only=True):
    received: bool = True
    # "appended", "duplicate" (already in the log) or "ignored" (a type Lufy does not use).
    outcome: Literal["appended", "duplicate", "ignored"]


class RevenuePeriod(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    amount_minor: int
    final: bool
    streams: float


class Revenue(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    amount_minor: int
    final: bool
    streams: float
    previous: RevenuePeriod
