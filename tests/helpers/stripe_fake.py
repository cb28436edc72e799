"""A small fake of Stripe's API on a loopback port, for the payments tests.

It is a real HTTP server (the `stripe` library talks to it through `STRIPE_API_BASE`) answering
what Lufy calls, with objects shaped like Stripe's API reference: Checkout Sessions, billing
portal sessions, subscription retrieval and the events list. Tests also use it to make Stripe
events (`fake.event(...)`) and to sign webhook payloads with Stripe's real scheme.

    with StripeFake() as fake:
        settings = load_settings(..., STRIPE_API_BASE=fake.url)
        evt = fake.event("customer.subscription.created", fake.subscription(...))
        body, headers = fake.signed(evt)
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from lufy.settings import Settings

__all__ = ["WEBHOOK_SECRET", "StripeFake", "sign_payload", "with_stripe"]

WEBHOOK_SECRET = "whsec_test_" + "0" * 32
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_test{next(_ids):06d}{secrets.token_hex(4)}"


def sign_payload(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header for `payload`: t=<unix time>,v1=<HMAC-SHA256 hex>."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class StripeFake:
    def __init__(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                fake._answer(self, "GET", parts.path, dict(parse_qsl(parts.query)))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                fake._answer(self, "POST", urlsplit(self.path).path, dict(parse_qsl(body)))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> StripeFake:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- objects, shaped like Stripe's API reference --------------------------------------------

    def subscription(
        self,
        *,
        customer: str,
        status: str = "active",
        user_id: str | None = None,
        price: str = "price_premium",
        period_end: int | None = None,
        cancel_at_period_end: bool = False,
        sub_id: str | None = None,
    ) -> dict[str, Any]:
        now = int(time.time())
        end = period_end if period_end is not None else now + 30 * 86400
        sub_id = sub_id or _id("sub")
        obj = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "cancel_at_period_end": cancel_at_period_end,
            "canceled_at": None,
            "created": now,
            "current_period_start": end - 30 * 86400,
            "current_period_end": end,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": _id("si"),
                        "object": "subscription_item",
                        "price": {"id": price, "object": "price", "currency": "eur"},
                        "quantity": 1,
                        "current_period_start": end - 30 * 86400,
                        "current_period_end": end,
                    }
                ],
                "has_more": False,
            },
            "livemode": False,
            "metadata": {"lufy_user_id": user_id} if user_id else {},
        }
        with self._lock:
            self.subscriptions[sub_id] = obj
        return obj

    def invoice(
        self,
        *,
        customer: str,
        amount_paid: int,
        currency: str = "eur",
        subscription: str | None = None,
        paid_at: int | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        paid = paid_at if paid_at is not None else int(time.time())
        return {
            "id": _id("in"),
            "object": "invoice",
            "customer": customer,
            "subscription": subscription,
            "subscription_details": {"metadata": {"lufy_user_id": user_id} if user_id else {}},
            "amount_due": amount_paid,
            "amount_paid": amount_paid,
            "currency": currency,
            "status": "paid",
            "status_transitions": {"paid_at": paid, "finalized_at": paid},
            "livemode": False,
        }

    def charge(
        self, *, customer: str, amount: int, amount_refunded: int, currency: str = "eur"
    ) -> dict[str, Any]:
        return {
            "id": _id("ch"),
            "object": "charge",
            "customer": customer,
            "amount": amount,
            "amount_refunded": amount_refunded,
            "currency": currency,
            "refunded": amount_refunded == amount,
            "paid": True,
            "livemode": False,
        }

    def checkout_session(
        self, *, customer: str, user_id: str, subscription: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": _id("cs"),
            "object": "checkout.session",
            "mode": "subscription",
            "status": "complete",
            "customer": customer,
            "subscription": subscription,
            "client_reference_id": user_id,
            "metadata": {"lufy_user_id": user_id},
            "url": None,
            "livemode": False,
        }

    def event(
        self, type_: str, obj: dict[str, Any], *, created: int | None = None
    ) -> dict[str, Any]:
        """A Stripe event about `obj`, also listed by GET /v1/events."""
        evt = {
            "id": _id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "created": created if created is not None else int(time.time()),
            "type": type_,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
        }
        with self._lock:
            self.events.append(evt)
        return evt

    def signed(
        self, evt: dict[str, Any], *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(evt).encode()
        return body, {
            "Stripe-Signature": sign_payload(body, secret, timestamp),
            "Content-Type": "application/json",
        }

    # --- the HTTP side ----------------------------------------------------------------------

    def _answer(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, params: dict[str, str]
    ) -> None:
        with self._lock:
            self.requests.append((method, path, params))
        if not handler.headers.get("Authorization", "").startswith("Bearer sk_"):
            return self._send(handler, 401, _error("invalid_request_error", "No API key"))
        status, body = self._route(method, path, params)
        self._send(handler, status, body)

    def _route(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        if method == "POST" and path == "/v1/checkout/sessions":
            if not params.get("line_items[0][price]"):
                return 400, _error("invalid_request_error", "Missing required param: line_items")
            session_id = _id("cs")
            return 200, {
                "id": session_id,
                "object": "checkout.session",
                "mode": params.get("mode"),
                "status": "open",
                "client_reference_id": params.get("client_reference_id"),
                "customer": params.get("customer"),
                "success_url": params.get("success_url"),
                "cancel_url": params.get("cancel_url"),
                "metadata": _nested(params, "metadata"),
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                "livemode": False,
            }
        if method == "POST" and path == "/v1/billing_portal/sessions":
            if not params.get("customer"):
                return 400, _error("invalid_request_error", "Missing required param: customer")
            portal_id = _id("bps")
            return 200, {
                "id": portal_id,
                "object": "billing_portal.session",
                "customer": params["customer"],
                "return_url": params.get("return_url"),
                "url": f"https://billing.stripe.com/p/session/{portal_id}",
                "livemode": False,
            }
        if method == "GET" and path.startswith("/v1/subscriptions/"):
            sub = self.subscriptions.get(path.rsplit("/", 1)[1])
            if sub is None:
                return 404, _error("invalid_request_error", "No such subscription")
            return 200, sub
        if method == "GET" and path == "/v1/events":
            return 200, self._list_events(params)
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method} {path})")

    def _list_events(self, params: dict[str, str]) -> dict[str, Any]:
        # Stripe lists newest first, pages with starting_after (an event id).
        with self._lock:
            events = sorted(self.events, key=lambda e: (e["created"], e["id"]), reverse=True)
        if "created[gte]" in params:
            events = [e for e in events if e["created"] >= int(params["created[gte]"])]
        if "starting_after" in params:
            ids = [e["id"] for e in events]
            events = events[ids.index(params["starting_after"]) + 1 :]
        limit = int(params.get("limit", 10))
        return {
            "object": "list",
            "url": "/v1/events",
            "data": events[:limit],
            "has_more": len(events) > limit,
        }

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", _id("req"))
        handler.end_headers()
        handler.wfile.write(data)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def _nested(params: dict[str, str], name: str) -> dict[str, str]:
    prefix = f"{name}["
    return {k[len(prefix) : -1]: v for k, v in params.items() if k.startswith(prefix)}


def with_stripe(settings: Settings, fake: StripeFake, **extra: Any) -> Settings:
    """`settings` with payments configured against `fake` (and any other overrides)."""
    return settings.model_copy(
        update={
            "STRIPE_SECRET_KEY": "sk_test_lufy",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_PRICE_PREMIUM": "price_premium",
            "STRIPE_API_BASE": fake.url,
            **extra,
        }
    )
