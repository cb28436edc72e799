"""/api/payments (CONTRACT.md §3) and /api/dashboard/revenue: thin handlers over PaymentsService."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from lufy.payments.schemas import (
    CheckoutSession,
    PortalSession,
    Revenue,
    SubscriptionView,
    WebhookReceipt,
)
from lufy.payments.service import PaymentsService, artist_revenue_view
from lufy.web.auth import Principal, require_role
from lufy.web.ratelimit import policies as limits
from lufy.web.ratelimit import rate_limited

__all__ = ["ROUTES"]

_BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]


@post(
    "/checkout",
    status_code=HTTP_201_CREATED,
    summary="Start a Stripe Checkout for Premium",
    security=_BEARER,
)
async def checkout(
    principal: NamedDependency[Principal], payments: NamedDependency[PaymentsService]
) -> CheckoutSession:
    require_role(principal, "listener")
    return await payments.checkout(principal.user_id)


@post(
    "/portal",
    status_code=HTTP_201_CREATED,
    summary="Open Stripe's billing portal",
    security=_BEARER,
)
async def portal(
    principal: NamedDependency[Principal], payments: NamedDependency[PaymentsService]
) -> PortalSession:
    return await payments.portal(principal.user_id)


@get("/subscription", summary="The caller's plan and subscription", security=_BEARER)
async def subscription(
    principal: NamedDependency[Principal], payments: NamedDependency[PaymentsService]
) -> SubscriptionView:
    return await payments.subscription(principal.user_id)


@rate_limited(limits.STRIPE_WEBHOOK)
@post(
    "/webhook",
    status_code=HTTP_200_OK,
    summary="Stripe webhooks (signed with Stripe-Signature)",
)
async def webhook(
    request: Request[Any, Any, Any], payments: NamedDependency[PaymentsService]
) -> WebhookReceipt:
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    return await payments.receive_webhook(payload, signature)


_Opt = Annotated[str | None, QueryParameter(description="as the other /api/dashboard routes")]


@get(
    "/api/dashboard/revenue",
    tags=["dashboard"],
    summary="Royalties for the range (estimated for the running month) and the one before",
    security=_BEARER,
)
async def revenue(
    principal: NamedDependency[Principal],
    payments: NamedDependency[PaymentsService],
    range: _Opt = None,
    from_: Annotated[str | None, QueryParameter(name="from")] = None,
    to: _Opt = None,
    tz: _Opt = None,
    artist_id: Annotated[uuid.UUID | None, QueryParameter(description="admins only")] = None,
) -> Revenue:
    return await artist_revenue_view(
        payments,
        role=principal.role,
        user_id=principal.user_id,
        artist_id=artist_id,
        range_=range,
        from_=from_,
        to=to,
        tz=tz,
    )


ROUTES = [
    Router(
        "/api/payments",
        route_handlers=[checkout, portal, subscription, webhook],
        tags=["payments"],
        request_max_body_size=512 * 1024,
    ),
    revenue,
]
