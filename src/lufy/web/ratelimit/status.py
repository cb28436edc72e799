"""`GET /api/rate-limit/status`: the caller's default policy as the middleware left it."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from lufy.errors import ServiceUnavailableError
from lufy.web.auth import Principal
from lufy.web.ratelimit.limiter import Decision, limiter_of
from lufy.web.ratelimit.middleware import STATE_KEY, Pending

__all__ = ["RateLimitStatus", "rate_limit_status", "status_of"]


class RateLimitStatus(msgspec.Struct, frozen=True, kw_only=True):
    policy: str
    limit: int
    remaining: int
    reset: int


async def status_of(request: Request[Any, Any, Any]) -> RateLimitStatus:
    """The caller's default policy as the middleware left it after this very request."""
    limiter = limiter_of(request.app.state.container)
    principal = request.state.get("principal")
    policy = limiter.table.user if isinstance(principal, Principal) else limiter.table.guest
    if not limiter.enabled:
        return RateLimitStatus(
            policy=policy.name, limit=policy.limit, remaining=policy.limit, reset=0
        )
    decision = request.state.get(STATE_KEY)
    if isinstance(decision, Pending):  # checked while the handler runs: wait for it
        decision = (await decision.verdict()).decision
    if not isinstance(decision, Decision):
        raise ServiceUnavailableError(
            "the rate limit store is unreachable, so the status is unknown", retry_after=5
        )
    index = decision.policies.index(policy) if policy in decision.policies else 0
    policy = decision.policies[index]
    return RateLimitStatus(
        policy=policy.name,
        limit=policy.limit,
        remaining=decision.remaining[index],
        reset=decision.reset[index],
    )


@get(
    "/api/rate-limit/status",
    tags=["rate limiting"],
    summary="The caller's rate limit: policy, limit, remaining requests, seconds until reset",
)
async def rate_limit_status(request: Request[Any, Any, Any]) -> RateLimitStatus:
    return await status_of(request)
