"""Rate limiting for every `/api` route: sliding windows in Redis, one atomic Lua call per request.

Each request is checked against its caller's default policy (`RATE_LIMIT_USER` keyed by user id
for a signed-in caller, `RATE_LIMIT_GUEST` keyed by client IP otherwise) plus the stricter
policies its route handler declares with `@rate_limited(rule)` (sign-in per IP and per e-mail,
sign-up, password and magic-link e-mail, ingestion's request count and byte budget). All of them
are checked and recorded by one EVALSHA of `ratelimit.lua`, so the limits are exact under
concurrency and cost one Redis round trip.

Responses carry the draft-ietf-httpapi-ratelimit-headers fields `RateLimit-Policy` and
`RateLimit`; a refused request gets a 429 problem+json with `Retry-After`. When Redis cannot be
reached, ordinary routes are let through (logged, counted in `lufy_rate_limit_decisions` with
outcome `fail_open`) and the credential routes answer 503: an attacker must not get unlimited
password guesses by taking Redis down. See docs/ratelimit.md.

Modules: `policies` (Policy, Rule, the declared rules, `rate_limited`, PolicyTable), `limiter`
(the Redis check), `keys` (what a request is counted by; body peeking), `responses` (headers,
413/429/503), `middleware`, `status` (the status route). To change the defaults or override a
route, pass a `RateLimiter` built with another `PolicyTable` to `use_limiter(container, limiter)`
before serving.
"""

from __future__ import annotations

from lufy.web.ratelimit.keys import email_of, keyed_policies
from lufy.web.ratelimit.keys import peek_body as _peek_body
from lufy.web.ratelimit.limiter import (
    Decision,
    RateLimiter,
    StoreUnavailable,
    limiter_of,
    use_limiter,
)
from lufy.web.ratelimit.middleware import ratelimit_middleware
from lufy.web.ratelimit.policies import INGEST_BYTES, Policy, PolicyTable, Rule, rate_limited
from lufy.web.ratelimit.status import RateLimitStatus, rate_limit_status

__all__ = [
    "INGEST_BYTES",
    "MIDDLEWARE",
    "ROUTES",
    "Decision",
    "Policy",
    "PolicyTable",
    "RateLimitStatus",
    "RateLimiter",
    "Rule",
    "StoreUnavailable",
    "_peek_body",
    "email_of",
    "keyed_policies",
    "limiter_of",
    "rate_limited",
    "ratelimit_middleware",
    "use_limiter",
]

MIDDLEWARE = [ratelimit_middleware]
ROUTES = [rate_limit_status]
