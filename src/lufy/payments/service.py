"""The payments application service: Stripe Checkout and portal, webhooks into the log,
subscriptions read back, and `resync` for events that webhooks missed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import stripe
import structlog

from lufy.analytics.periods import resolve_period
from lufy.db import Database
from lufy.errors import (
    ConcurrencyError,
    ConflictError,
    DuplicateEventError,
    LufyError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from lufy.eventstore import ANY, EventStore
from lufy.eventstore.envelope import EventMetadata, NewEvent
from lufy.identity import event_metadata
from lufy.payments import model
from lufy.payments.entitlements import plan_of
from lufy.payments.events import STREAM_TYPE
from lufy.payments.projections import PROJECTIONS
from lufy.payments.royalties import artist_revenue
from lufy.payments.schemas import (
    CheckoutSession,
    PortalSession,
    Revenue,
    RevenuePeriod,
    SubscriptionView,
    WebhookReceipt,
)
from lufy.projections.inline import append_inline
from lufy.settings import Settings
from lufy.sqlfiles import load_queries

__all__ = [
    "WEBHOOK_TOLERANCE_SECONDS",
    "PaymentProviderError",
    "PaymentsNotConfiguredError",
    "PaymentsService",
    "ResyncReport",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "artist_revenue_view",
]

_Q = load_queries("lufy.payments")
_log = structlog.get_logger("lufy.payments")
WEBHOOK_TOLERANCE_SECONDS = 300
# A subscription in one of these states is open: a second checkout would double-charge.
Outcome = Literal["appended", "duplicate", "ignored"]
_OPEN = frozenset({"active", "trialing", "past_due", "incomplete", "unpaid", "paused"})


class PaymentsNotConfiguredError(ServiceUnavailableError):
    title = "Payments are not configured"


class WebhookSignatureError(LufyError):
    status = 400
    title = "Invalid webhook signature"


class WebhookPayloadError(LufyError):
    status = 400
    title = "Invalid webhook payload"


class PaymentProviderError(ServiceUnavailableError):
    """Stripe refused or could not be reached: nothing was changed, the caller may retry."""

    title = "Payment provider unavailable"


@dataclass(frozen=True)
class ResyncReport:
    listed: int
    appended: int
    duplicates: int
    ignored: int


class PaymentsService:
    def __init__(
        self,
        *,
        db: Database,
        store: EventStore,
        settings: Settings,
        client: stripe.StripeClient | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.clock = clock
        self._client = client
        self._http: stripe.HTTPXClient | None = None

    # --- configuration ------------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        return bool(self.settings.STRIPE_SECRET_KEY and self.settings.STRIPE_WEBHOOK_SECRET)

    def _stripe(self) -> stripe.StripeClient:
        if not self.configured:
            raise PaymentsNotConfiguredError(
                "payments are not configured (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET)"
            )
        if self._client is None:
            base = self.settings.STRIPE_API_BASE
            self._http = stripe.HTTPXClient(timeout=15)
            self._client = stripe.StripeClient(
                self.settings.STRIPE_SECRET_KEY or "",
                base_addresses={"api": base} if base else None,
                http_client=self._http,
                max_network_retries=2,
            )
        return self._client

    async def aclose(self) -> None:
        if self._http is not None:
            await cast(Any, self._http).close_async()
        self._http = self._client = None

    # --- listener flows -----------------------------------------------------------------------

    async def checkout(self, user_id: uuid.UUID) -> CheckoutSession:
        client = self._stripe()
        price = self.settings.STRIPE_PRICE_PREMIUM
        if not price:
            raise PaymentsNotConfiguredError(
                "payments are not configured (STRIPE_PRICE_PREMIUM is unset)"
            )
        async with self.db.transaction(user_id=user_id, role="listener") as conn:
            cur = await conn.execute(_Q.user_subscriptions, {"user_id": user_id})
            statuses = [row[1] for row in await cur.fetchall()]
            cur = await conn.execute(_Q.user_customer, {"user_id": user_id})
            customer = await cur.fetchone()
        if any(s in _OPEN for s in statuses):
            raise ConflictError(
                "you already have an open subscription: manage it in the billing portal"
            )
        app = self.settings.APP_URL
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": price, "quantity": 1}],
            "client_reference_id": str(user_id),
            "metadata": {"lufy_user_id": str(user_id)},
            "subscription_data": {"metadata": {"lufy_user_id": str(user_id)}},
            "success_url": f"{app}/account?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{app}/account?checkout=canceled",
        }
        if customer is not None:
            params["customer"] = customer[0]
        session = await self._call(client.v1.checkout.sessions.create_async(cast(Any, params)))
        return CheckoutSession(url=str(session["url"]), session_id=str(session["id"]))

    async def portal(self, user_id: uuid.UUID) -> PortalSession:
        client = self._stripe()
        async with self.db.transaction(user_id=user_id, role="listener") as conn:
            cur = await conn.execute(_Q.user_customer, {"user_id": user_id})
            customer = await cur.fetchone()
        if customer is None:
            raise ConflictError("no billing account yet: subscribe first")
        params = {"customer": customer[0], "return_url": f"{self.settings.APP_URL}/account"}
        session = await self._call(
            client.v1.billing_portal.sessions.create_async(cast(Any, params))
        )
        return PortalSession(url=str(session["url"]))

    async def subscription(self, user_id: uuid.UUID) -> SubscriptionView:
        self._stripe()
        now = self.clock()
        async with self.db.transaction(user_id=user_id, role="listener") as conn:
            plan = await plan_of(conn, user_id, now, grace_days=self.settings.PAYMENTS_GRACE_DAYS)
            cur = await conn.execute(_Q.user_subscriptions, {"user_id": user_id})
            rows = await cur.fetchall()
        if not rows:
            return SubscriptionView(
                plan=plan, status=None, current_period_end=None, cancel_at_period_end=False
            )
        # The newest subscription describes the account (an older one is history).
        _sub_id, status, period_end, cancel, _since, _as_of = rows[0]
        return SubscriptionView(
            plan=plan, status=status, current_period_end=period_end, cancel_at_period_end=cancel
        )

    # --- webhooks -----------------------------------------------------------------------------

    async def receive_webhook(self, payload: bytes, signature: str | None) -> WebhookReceipt:
        """Verify Stripe's signature, then append the event once; nothing is written unless
        the signature holds, is fresh and covers exactly this body."""
        self._stripe()
        if not signature:
            raise WebhookSignatureError("the Stripe-Signature header is missing")
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8", "replace"),
                signature,
                self.settings.STRIPE_WEBHOOK_SECRET,
                WEBHOOK_TOLERANCE_SECONDS,
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookSignatureError(f"Stripe-Signature: {exc.user_message or exc}") from None
        try:
            evt = json.loads(payload)
        except ValueError:
            raise WebhookPayloadError("the webhook body is not JSON") from None
        if not isinstance(evt, dict) or not isinstance(evt.get("id"), str):
            raise WebhookPayloadError("the webhook body is not a Stripe event")
        return WebhookReceipt(outcome=await self.record(evt, source="webhook"))

    async def record(self, evt: Mapping[str, Any], *, source: str) -> Outcome:
        """Append one Stripe event (and update the inline read models), once per Stripe id."""
        try:
            event = model.translate(evt)
        except (KeyError, TypeError, ValueError) as exc:
            raise WebhookPayloadError(f"the Stripe event is malformed: {exc!r}") from None
        if event is None:
            _log.info("stripe_event_ignored", stripe_event_id=evt["id"], type=evt.get("type"))
            return "ignored"
        customer = getattr(event, "customer_id", "") or "unknown"
        item = NewEvent(
            event=event,
            event_id=model.event_uuid(str(evt["id"])),
            occurred_at=getattr(event, "created", None),
            metadata=EventMetadata(
                **event_metadata(
                    causation_id=str(evt["id"]),
                    extra={"source": source, "stripe_type": str(evt.get("type"))},
                )
            ),
        )
        for attempt in range(5):
            try:
                async with self.db.transaction(role="system") as conn:
                    result, _ = await append_inline(
                        self.store,
                        conn,
                        STREAM_TYPE,
                        customer,
                        [item],
                        expected=ANY,
                        projections=PROJECTIONS,
                    )
                return "duplicate" if result.idempotent_replay else "appended"
            except DuplicateEventError:
                # Stripe's id is authoritative: the event is in the log already.
                return "duplicate"
            except ConcurrencyError:
                # The same event (or another of this customer's) committed meanwhile; the retry
                # sees it and answers idempotently.
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    async def resync(self, since: datetime | None) -> ResyncReport:
        """List Stripe's events (oldest first) and append those the log lacks."""
        client = self._stripe()
        params: dict[str, Any] = {"limit": 100}
        if since is not None:
            params["created"] = {"gte": int(since.timestamp())}
        try:
            page = await client.v1.events.list_async(cast(Any, params))
            events = [e.to_dict() async for e in page.auto_paging_iter()]
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe refused the request: {_message(exc)}") from None
        events.sort(key=lambda e: (int(e.get("created", 0)), str(e["id"])))
        counts: dict[Outcome, int] = {"appended": 0, "duplicate": 0, "ignored": 0}
        for evt in events:
            counts[await self.record(evt, source="resync")] += 1
        return ResyncReport(
            listed=len(events),
            appended=counts["appended"],
            duplicates=counts["duplicate"],
            ignored=counts["ignored"],
        )

    @staticmethod
    async def _call(pending: Any) -> Any:
        try:
            return await pending
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe refused the request: {_message(exc)}") from None


def _message(exc: stripe.StripeError) -> str:
    return exc.user_message or type(exc).__name__


async def artist_revenue_view(
    service: PaymentsService,
    *,
    role: str,
    user_id: uuid.UUID,
    artist_id: uuid.UUID | None,
    range_: str | None,
    from_: str | None,
    to: str | None,
    tz: str | None,
) -> Revenue:
    """`GET /api/dashboard/revenue`: an artist's royalties for the range and the one before."""
    if role == "artist":
        if artist_id not in (None, user_id):
            raise PermissionDeniedError("an artist sees only their own numbers")
        artist_id = user_id
    elif role != "admin":
        raise PermissionDeniedError("the dashboard is for artists and admins")
    now = service.clock()
    period = resolve_period(range_, from_, to, tz, now)
    share = service.settings.ROYALTY_ARTIST_SHARE

    async def one(start: datetime, end: datetime) -> RevenuePeriod:
        currency, amount, final, streams = await artist_revenue(
            service.db, artist_id, start, end, now=now, share=share
        )
        return RevenuePeriod(currency=currency, amount_minor=amount, final=final, streams=streams)

    current = await one(period.start, period.end)
    previous = await one(period.previous_start, period.previous_end)
    return Revenue(
        currency=current.currency,
        amount_minor=current.amount_minor,
        final=current.final,
        streams=current.streams,
        previous=previous,
    )
