"""Payments read models, both inline (a listener who just paid is premium as soon as the webhook
that says so has been answered):

- `payments_entitlements`: which user a Stripe customer is, and each subscription's newest state
  (ordered by Stripe's event time, so out-of-order deliveries end in the right state);
- `payments_ledger`: every payment and refund, in minor units: what royalty statements add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from psycopg import AsyncConnection

from lufy.eventstore.envelope import RecordedEvent
from lufy.payments.events import ChargeRefunded, CheckoutCompleted, InvoicePaid, SubscriptionChanged
from lufy.payments.model import snapshot_rank
from lufy.projections.base import Projection
from lufy.sqlfiles import load_queries

__all__ = ["ENTITLEMENTS", "LEDGER", "PROJECTIONS", "EntitlementsProjection", "LedgerProjection"]

_Q = load_queries("lufy.payments")


class EntitlementsProjection(Projection):
    name: ClassVar[str] = "payments_entitlements"
    version: ClassVar[int] = 1
    inline: ClassVar[bool] = True
    tables: ClassVar[tuple[str, ...]] = (
        "payment_customers",
        "payment_subscriptions",
        "payment_subscription_statuses",
    )
    handles: ClassVar[frozenset[str]] = frozenset(
        {"payments.checkout_completed", "payments.subscription_changed"}
    )

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        for recorded in events:
            e = recorded.data
            match e:
                case CheckoutCompleted():
                    if e.user_id is not None:
                        await self._customer(conn, e.customer_id, e.user_id, e.created)
                case SubscriptionChanged():
                    user_id = e.user_id
                    if user_id is not None:
                        await self._customer(conn, e.customer_id, user_id, e.created)
                    else:
                        cur = await conn.execute(_Q.customer_user, {"customer_id": e.customer_id})
                        row = await cur.fetchone()
                        user_id = row[0] if row else None
                    params = {
                        "subscription_id": e.subscription_id,
                        "customer_id": e.customer_id,
                        "user_id": user_id,
                        "status": e.status,
                        "price_id": e.price_id,
                        "current_period_end": e.current_period_end,
                        "cancel_at_period_end": e.cancel_at_period_end,
                        "as_of": e.created,
                        "as_of_rank": snapshot_rank(e.stripe_type),
                        "stripe_event_id": e.stripe_event_id,
                    }
                    await conn.execute(_Q.upsert_subscription, params)
                    await conn.execute(_Q.insert_status, params)
                    await conn.execute(_Q.set_past_due_since, params)

    @staticmethod
    async def _customer(
        conn: AsyncConnection[Any], customer_id: str, user_id: Any, at: Any
    ) -> None:
        params = {"customer_id": customer_id, "user_id": user_id, "at": at}
        await conn.execute(_Q.upsert_customer, params)
        # A subscription seen before its checkout learns its user now.
        await conn.execute(_Q.backfill_subscription_user, params)


class LedgerProjection(Projection):
    name: ClassVar[str] = "payments_ledger"
    version: ClassVar[int] = 1
    inline: ClassVar[bool] = True
    tables: ClassVar[tuple[str, ...]] = ("payment_ledger",)
    handles: ClassVar[frozenset[str]] = frozenset(
        {"payments.invoice_paid", "payments.charge_refunded"}
    )

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        for recorded in events:
            e = recorded.data
            match e:
                case InvoicePaid():
                    row = {
                        "kind": "payment",
                        "object_id": e.invoice_id,
                        "amount_minor": e.amount_paid,
                        "at": e.paid_at,
                    }
                case ChargeRefunded():
                    row = {
                        "kind": "refund",
                        "object_id": e.charge_id,
                        "amount_minor": e.amount_refunded,
                        "at": e.created,
                    }
                case _:
                    continue
            await conn.execute(
                _Q.insert_ledger,
                {
                    **row,
                    "stripe_event_id": e.stripe_event_id,
                    "customer_id": e.customer_id,
                    "currency": e.currency,
                },
            )


ENTITLEMENTS = EntitlementsProjection()
LEDGER = LedgerProjection()
PROJECTIONS: list[Projection] = [ENTITLEMENTS, LEDGER]
