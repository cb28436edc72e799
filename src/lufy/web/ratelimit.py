"""Rate limiting for every `/api` route: sliding windows in Redis, one atomic Lua call per request.

Each request is checked against its caller's default policy (`RATE_LIMIT_USER` keyed by user id
for a signed-in caller, `RATE_LIMIT_GUEST` keyed by client IP otherwise) plus any stricter
policies of its route (sign-in per IP and per e-mail, sign-up, password and magic-link e-mail).
All of them are checked and recorded by one EVALSHA of `ratelimit.lua`, so the limits are exact
under concurrency and cost one Redis round trip.

Responses carry the draft-ietf-httpapi-ratelimit-headers fields `RateLimit-Policy` and
`RateLimit`; a refused request gets a 429 problem+json with `Retry-After`. When Redis cannot be
reached, ordinary routes are let through (logged, counted in `lufy_rate_limit_decisions` with
outcome `fail_open`) and the credential routes answer 503: an attacker must not get unlimited
password guesses by taking Redis down. See docs/ratelimit.md.

The policy table is plain data (`PolicyTable.default(settings)`); to change it, put a
`RateLimiter` built with another table to `use_limiter(container, limiter)` before serving.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import itertools
import os
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, NamedTuple

import msgspec
from litestar import Request, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from lufy.errors import ServiceUnavailableError
from lufy.logs import get_logger
from lufy.observability import (
    record_rate_limit_fail_closed,
    record_rate_limit_fail_open,
    record_rate_limited,
)
from lufy.settings import Settings
from lufy.web.auth import Principal
from lufy.web.clientip import TrustedProxies, client_ip_for
from lufy.web.ratelimit_store import ReplyError, ScriptStore, StoreError

__all__ = [
    "MIDDLEWARE",
    "ROUTES",
    "Decision",
    "Policy",
    "PolicyTable",
    "RateLimitStatus",
    "RateLimiter",
    "Rule",
    "default_route_rules",
    "ratelimit_middleware",
]

KeyKind = Literal["caller", "ip", "email"]
Unit = Literal["requests", "content-bytes"]

_log = get_logger(__name__)
_SCRIPT = resources.files("lufy.web").joinpath("ratelimit.lua").read_text(encoding="utf-8")
_STATE_KEY = "rate_limit"
_KEY_PREFIX = "lufy:rl"
# An e-mail keyed policy needs the JSON body; credential bodies are tiny, and refusing a padded
# one keeps an attacker from hiding the address past what we are willing to read.
_MAX_PEEK_BODY = 16 * 1024
_PROBLEM_JSON = b"application/problem+json"


# --- the policy table -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """At most `limit` requests per sliding `window` seconds for each value of `key`.

    `key` says what is counted: `caller` (the user id when signed in, else the client IP), `ip`,
    or `email` (the `email` field of the JSON body, normalised and hashed). With `unit`
    "content-bytes" the policy is a budget of request body bytes instead: a bucket of `limit`
    bytes refilled at `limit` per `window` (a request whose body does not fit is refused).
    """

    name: str
    limit: int
    window: int
    key: KeyKind = "ip"
    unit: Unit = "requests"

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.window <= 0:
            raise ValueError(f"policy {self.name!r}: limit and window must be positive")
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise ValueError(f"policy {self.name!r}: use letters, digits, '-', '_' or '.'")

    @property
    def header_item(self) -> str:
        unit = ';qu="content-bytes"' if self.unit == "content-bytes" else ""
        return f'"{self.name}";q={self.limit};w={self.window}{unit}'

    @property
    def counts_bytes(self) -> bool:
        return self.unit == "content-bytes"


@dataclass(frozen=True, slots=True)
class Rule:
    """The extra policies of a route or route group, and what to do when Redis is down."""

    policies: tuple[Policy, ...] = ()
    fail_closed: bool = False
    include_default: bool = True

    def __post_init__(self) -> None:
        if not self.policies and not self.include_default:
            raise ValueError("a rule needs at least one policy")

    @property
    def needs_email(self) -> bool:
        return any(p.key == "email" for p in self.policies)

    @property
    def counts_bytes(self) -> bool:
        return any(p.counts_bytes for p in self.policies)


_15_MINUTES = 15 * 60
_10_MINUTES = 10 * 60
_HOUR = 60 * 60
# The analytics ingestion budget per caller: 8 MiB per 10 minutes (about 14 KB/s sustained),
# eight full 1 MiB batches at once. A player's beacons use a few hundred bytes a second.
INGEST_BYTES = 8 * 1024 * 1024
# The largest body the ingestion route accepts (its handler says so with a 413 too).
_MAX_INGEST_BODY = 1024 * 1024


def default_route_rules() -> dict[tuple[str, str], Rule]:
    """The stricter policies of the credential routes (CONTRACT.md section 3).

    Per e-mail limits stop guessing one account's password from many addresses; per IP limits
    stop one address from walking through many accounts. These routes fail closed.
    """
    auth = "/api/auth"
    return {
        ("POST", f"{auth}/sign-in"): Rule(
            (
                Policy("sign-in-ip", 20, _15_MINUTES, "ip"),
                Policy("sign-in-email", 5, _15_MINUTES, "email"),
            ),
            fail_closed=True,
        ),
        # Sign-up answers 409 for a registered address: per address too, or it is an oracle
        # of who has an account that many IPs can query without limit.
        ("POST", f"{auth}/sign-up"): Rule(
            (
                Policy("sign-up-ip", 10, _HOUR, "ip"),
                Policy("sign-up-email", 5, _HOUR, "email"),
            ),
            fail_closed=True,
        ),
        ("POST", f"{auth}/password/forgot"): Rule(
            (
                Policy("password-forgot-ip", 10, _15_MINUTES, "ip"),
                Policy("password-forgot-email", 3, _HOUR, "email"),
            ),
            fail_closed=True,
        ),
        ("POST", f"{auth}/password/reset"): Rule(
            (Policy("password-reset-ip", 10, _15_MINUTES, "ip"),),
            fail_closed=True,
        ),
        ("POST", f"{auth}/magic-link"): Rule(
            (
                Policy("magic-link-ip", 10, _15_MINUTES, "ip"),
                Policy("magic-link-email", 3, _15_MINUTES, "email"),
            ),
            fail_closed=True,
        ),
        ("POST", f"{auth}/magic-link/verify"): Rule(
            (Policy("magic-link-verify-ip", 10, _15_MINUTES, "ip"),),
            fail_closed=True,
        ),
        ("POST", f"{auth}/verify-email"): Rule(
            (Policy("verify-email-ip", 10, _15_MINUTES, "ip"),),
            fail_closed=True,
        ),
        ("POST", f"{auth}/verify-email/resend"): Rule(
            (Policy("verify-email-resend-ip", 5, _HOUR, "ip"),),
            fail_closed=True,
        ),
        ("POST", f"{auth}/password/change"): Rule(
            (Policy("password-change-ip", 10, _15_MINUTES, "ip"),),
            fail_closed=True,
        ),
        # Players send beacons every few seconds, many listeners share one NAT address, and a
        # batch carries up to 500 events: ingestion gets its own, wider policy per caller, and a
        # budget of body bytes, since what it accepts is kept in the log for ever.
        ("POST", "/api/analytics/events"): Rule(
            (
                Policy("ingest", 600, 60, "caller"),
                Policy("ingest-bytes", INGEST_BYTES, _10_MINUTES, "caller", "content-bytes"),
            ),
            include_default=False,
        ),
        # Refresh presents a credential too; CONTRACT.md says auth routes fail closed.
        ("POST", f"{auth}/refresh"): Rule(
            (Policy("refresh-ip", 60, _15_MINUTES, "ip"),),
            fail_closed=True,
        ),
        # Stripe delivers bursts of webhooks from a few addresses; they are signed, not guessed.
        ("POST", "/api/payments/webhook"): Rule(
            (Policy("stripe-webhook", 1200, 60, "ip"),), include_default=False
        ),
        # Erasing the account checks the password (or an e-mailed token): as guessable as
        # a sign-in with a stolen access token.
        ("DELETE", f"{auth}/account"): Rule(
            (Policy("account-delete-ip", 10, _15_MINUTES, "ip"),),
            fail_closed=True,
        ),
    }


@dataclass(frozen=True)
class PolicyTable:
    """Default policies for users and guests, plus rules per route and per route group.

    `routes` maps (METHOD, path) to a rule; `groups` maps a path prefix to a rule for every
    method, the longest prefix winning. An exact route beats a group.
    """

    user: Policy
    guest: Policy
    routes: Mapping[tuple[str, str], Rule] = field(default_factory=dict)
    groups: Mapping[str, Rule] = field(default_factory=dict)
    _groups_by_length: tuple[tuple[str, Rule], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.groups.items(), key=lambda item: -len(item[0])))
        object.__setattr__(self, "_groups_by_length", ordered)

    @classmethod
    def default(
        cls,
        settings: Settings,
        *,
        routes: Mapping[tuple[str, str], Rule] | None = None,
        groups: Mapping[str, Rule] | None = None,
    ) -> PolicyTable:
        """The table from settings; `routes` entries replace or add to the default rules."""
        user, guest = settings.rate_limit_user, settings.rate_limit_guest
        table = default_route_rules()
        table.update(routes or {})
        return cls(
            user=Policy("user", user.limit, user.window_seconds, "caller"),
            guest=Policy("guest", guest.limit, guest.window_seconds, "caller"),
            routes=table,
            groups=dict(groups or {}),
        )

    def rule_for(self, method: str, path: str) -> Rule | None:
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        rule = self.routes.get((method, path))
        if rule is not None:
            return rule
        for prefix, group_rule in self._groups_by_length:
            if path.startswith(prefix):
                return group_rule
        return None

    def policies_for(self, rule: Rule | None, signed_in: bool) -> tuple[Policy, ...]:
        default = self.user if signed_in else self.guest
        if rule is None:
            return (default,)
        return (default, *rule.policies) if rule.include_default else rule.policies


# --- the limiter --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check: per policy, the units left and seconds until the next frees."""

    admitted: bool
    policies: tuple[Policy, ...]
    remaining: tuple[int, ...]
    reset: tuple[int, ...]

    @property
    def retry_after(self) -> int:
        """Seconds until every refusing policy has room again (at least 1)."""
        waits = [r for r, left in zip(self.reset, self.remaining, strict=True) if left == 0]
        return max(1, *waits) if waits else 1

    @property
    def refused_by(self) -> Policy | None:
        if self.admitted:
            return None
        for policy, left in zip(self.policies, self.remaining, strict=True):
            if left == 0:
                return policy
        return self.policies[0]

    def header(self) -> str:
        return ", ".join(
            f'"{p.name}";r={r};t={t}'
            for p, r, t in zip(self.policies, self.remaining, self.reset, strict=True)
        )


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


_NO_COST = _bulk(b"0")


@dataclass(frozen=True, slots=True)
class CheckPlan:
    """One EVALSHA of ratelimit.lua for a set of keys, encoded (RESP) but for the member.

    Every request of a caller on a route sends the same command but for the member it adds, so
    the command is built once: `head` (EVALSHA, the script's sha, the keys) and `tail` (the
    record flag, limits and windows), with the member between them.
    """

    sha: str
    applied: tuple[Policy, ...]
    keys: tuple[str, ...]
    head: bytes
    tail: bytes

    @classmethod
    def build(cls, sha: str, applied: tuple[Policy, ...], keys: tuple[str, ...]) -> CheckPlan:
        # EVALSHA sha numkeys keys member cost flag (limit window kind)*
        argc = 3 + len(keys) + 3 + 3 * len(applied)
        head = [b"*%d\r\n" % argc, _bulk(b"EVALSHA"), _bulk(sha.encode())]
        head.append(_bulk(str(len(keys)).encode()))
        head.extend(_bulk(key.encode()) for key in keys)
        tail = [_bulk(b"1")]  # record the request when admitted
        for policy in applied:
            tail.append(_bulk(str(policy.limit).encode()))
            tail.append(_bulk(str(policy.window * 1000).encode()))
            tail.append(_bulk(b"b" if policy.counts_bytes else b"r"))
        return cls(sha, applied, keys, b"".join(head), b"".join(tail))

    def payload(self, member: bytes, cost: int = 0) -> bytes:
        """The command for one request; `cost` is its body size (byte policies only)."""
        cost_arg = _NO_COST if cost == 0 else _bulk(str(cost).encode())
        return b"".join((self.head, _bulk(member), cost_arg, self.tail))


class StoreUnavailable(Exception):
    """Redis could not answer in time; the caller decides between failing open and closed."""


class RateLimiter:
    """Checks requests against a PolicyTable with one EVALSHA per check.

    The store's timeout bounds connecting and each answer, so an outage never stalls a request
    for long. After a failure Redis is not asked again for `cooldown` seconds: during
    an outage requests pay nothing for the limiter and the log gets one line per cooldown.
    """

    def __init__(
        self,
        store: ScriptStore,
        table: PolicyTable,
        *,
        enabled: bool = True,
        trusted_proxies: TrustedProxies | None = None,
        cooldown: float = 1.0,
    ) -> None:
        self.store = store
        self.table = table
        self.enabled = enabled
        self.trusted = trusted_proxies or TrustedProxies()
        self.cooldown = cooldown
        self._sha = hashlib.sha1(_SCRIPT.encode(), usedforsecurity=False).hexdigest()
        self._down_until = 0.0
        # Each admitted request is a member of its sorted sets: unique per process and call
        # (a random prefix per limiter, then a counter), without a system call per request.
        self._member_prefix = os.urandom(8).hex()
        self._member_seq = itertools.count()
        # keys -> [units left at the last decision, when that stops being news, checks in flight]
        self._headroom: dict[tuple[str, ...], list[float]] = {}
        self._plans: dict[tuple[str, ...], CheckPlan] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        table: PolicyTable | None = None,
        timeout: float = 0.25,
        cooldown: float = 1.0,
    ) -> RateLimiter:
        return cls(
            ScriptStore(settings.REDIS_URL, timeout=timeout),
            table or PolicyTable.default(settings),
            enabled=settings.RATE_LIMIT_ENABLED,
            trusted_proxies=TrustedProxies.from_settings(settings),
            cooldown=cooldown,
        )

    @staticmethod
    def keys_of(keyed: Sequence[tuple[Policy, str]]) -> tuple[str, ...]:
        return tuple(f"{_KEY_PREFIX}:{policy.name}:{subject}" for policy, subject in keyed)

    def begin_speculation(self, keys: tuple[str, ...]) -> bool:
        """Whether a safe request may run before its check answers: only when the last
        decision for these keys, under a second old, left room to spare beyond the speculative
        checks already in flight. When it may, it counts as in flight until end_speculation."""
        seen = self._headroom.get(keys)
        if seen is None or seen[1] <= time.monotonic() or seen[0] - seen[2] < 2:
            return False
        seen[2] += 1
        return True

    def end_speculation(self, keys: tuple[str, ...]) -> None:
        seen = self._headroom.get(keys)
        if seen is not None and seen[2] > 0:
            seen[2] -= 1

    def plan(self, applied: tuple[Policy, ...], keys: tuple[str, ...]) -> CheckPlan:
        """What the checks of these keys send, encoded once (cached per key set)."""
        plan = self._plans.get(keys)
        if plan is None or plan.sha != self._sha:
            if len(self._plans) > 100_000:  # a bound, not an eviction policy: it is a cache
                self._plans.clear()
            plan = self._plans[keys] = CheckPlan.build(self._sha, applied, keys)
        return plan

    def send(self, plan: CheckPlan, cost: int = 0) -> asyncio.Future[Any] | None:
        """Write the check now and return the future of its raw reply, without a task or an
        await: None when there is no open connection on this event loop yet, or Redis is
        marked down (then `check` does it the slow way). Finish with `settle`."""
        if time.monotonic() < self._down_until:
            return None
        conn = self.store.open_connection()
        if conn is None:
            return None
        return conn.request(plan.payload(self._member(), cost))

    async def settle(
        self, plan: CheckPlan, reply: asyncio.Future[Any], *, reload: bool = True, cost: int = 0
    ) -> Decision:
        """The decision of a check sent with `send`; raises StoreUnavailable."""
        try:
            value = await reply
            if reload and isinstance(value, ReplyError) and value.code == "NOSCRIPT":
                # First use on this server, or Redis restarted: load once, then ask again.
                sha = await self.store.execute("SCRIPT", "LOAD", _SCRIPT)
                self._sha = sha.decode()
                plan = self.plan(plan.applied, plan.keys)
                conn = await self.store.connection()
                return await self.settle(
                    plan, conn.request(plan.payload(self._member(), cost)), reload=False
                )
        except (StoreError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        return self._decided(plan, value)

    async def check(self, plan: CheckPlan, cost: int = 0) -> Decision:
        """Check (and when admitted, record) one request of `cost` body bytes; raises
        StoreUnavailable."""
        reply = self.send(plan, cost)
        if reply is None:  # no connection yet on this loop, or Redis marked down
            if time.monotonic() < self._down_until:
                raise StoreUnavailable("rate limit store marked down after a recent failure")
            try:
                conn = await self.store.connection()
                reply = conn.request(plan.payload(self._member(), cost))
            except (StoreError, OSError, TimeoutError) as exc:
                raise self._unavailable(exc) from exc
        return await self.settle(plan, reply, cost=cost)

    def _member(self) -> bytes:
        return f"{self._member_prefix}{next(self._member_seq)}".encode()

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        self._down_until = time.monotonic() + self.cooldown
        _log.warning(
            "rate limit store unavailable",
            error=f"{type(exc).__name__}: {exc}".strip(": "),
            cooldown_seconds=self.cooldown,
        )
        return StoreUnavailable(str(exc))

    def _decided(self, plan: CheckPlan, value: Any) -> Decision:
        n = len(plan.applied)
        if (
            not isinstance(value, list)
            or len(value) != 1 + 2 * n
            or not all(isinstance(v, int) for v in value)
        ):
            raise self._unavailable(
                StoreError(f"unexpected reply to the rate limit script: {value!r}")
            )
        remaining = tuple(value[1::2])
        decision = Decision(
            admitted=value[0] == 1,
            policies=plan.applied,
            remaining=remaining,
            reset=tuple(-(-us // 1_000_000) for us in value[2::2]),
        )
        seen = self._headroom.get(plan.keys)
        if seen is None:
            if len(self._headroom) > 100_000:  # a bound, not an eviction policy: it is a hint
                self._headroom.clear()
            seen = self._headroom[plan.keys] = [0.0, 0.0, 0.0]
        seen[0] = min(remaining)
        seen[1] = time.monotonic() + 1.0
        return decision

    async def aclose(self) -> None:
        await self.store.aclose()


# One limiter per container, kept here rather than on the container: the container is built
# below the web layer and cannot name this type.
_LIMITERS: weakref.WeakKeyDictionary[Any, RateLimiter] = weakref.WeakKeyDictionary()


def limiter_of(container: Any) -> RateLimiter:
    """The container's limiter, built from its settings on first use (closed by the app's
    lifespan, or by whoever passed it to `use_limiter`)."""
    limiter = _LIMITERS.get(container)
    if limiter is None:
        limiter = _LIMITERS[container] = RateLimiter.from_settings(container.settings)
    return limiter


def use_limiter(container: Any, limiter: RateLimiter) -> None:
    """Serve the container's requests with this limiter (tests: another policy table)."""
    _LIMITERS[container] = limiter


# --- keys ---------------------------------------------------------------------------------------


class _EmailField(msgspec.Struct):
    email: Any = None


_EMAIL_DECODER = msgspec.json.Decoder(_EmailField)


def email_of(body: bytes) -> str | None:
    """The normalised `email` of a JSON object body, or None (the handler rejects such bodies).

    A body nested thousands deep makes the decoder give up with RecursionError: no address
    then, so the request is counted by its per-IP policies and the handler answers 400.
    """
    try:
        value = _EMAIL_DECODER.decode(body).email
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    if not isinstance(value, str):
        return None
    normalised = value.strip().lower()
    return normalised or None


def _hashed(text: str) -> str:
    # E-mail addresses never appear in Redis keys.
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _ip_subject(ip: str) -> str:
    # An IPv6 client usually holds a whole /64; counting single addresses would let it rotate.
    if ":" not in ip:
        return ip
    try:
        address = ipaddress.IPv6Address(ip)
    except ValueError:
        return ip
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def keyed_policies(
    policies: Iterable[Policy], principal: Principal | None, ip: str, email: str | None
) -> list[tuple[Policy, str]]:
    keyed: list[tuple[Policy, str]] = []
    for policy in policies:
        if policy.key == "email":
            if email is not None:
                keyed.append((policy, _hashed(email)))
        elif policy.key == "caller" and principal is not None:
            keyed.append((policy, principal.user_id.hex))
        else:
            keyed.append((policy, _ip_subject(ip)))
    return keyed


# --- ASGI ---------------------------------------------------------------------------------------


class _Peeked(NamedTuple):
    body: bytes | None  # the whole body, or None when too large or the client went away
    too_large: bool
    replay: Receive


async def _peek_body(receive: Receive, limit: int) -> _Peeked:
    """Read the body up to `limit` bytes, and a `receive` that replays it to the handler."""
    messages: deque[ReceiveMessage] = deque()
    chunks: list[bytes] = []
    size = 0
    body: bytes | None = None
    too_large = False
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break  # a disconnect: the handler will see it too
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            too_large = True
            break
        chunks.append(chunk)
        if not message.get("more_body", False):
            body = b"".join(chunks)
            break

    async def replay() -> ReceiveMessage:
        if messages:
            return messages.popleft()
        return await receive()

    return _Peeked(body, too_large, replay)


@functools.lru_cache(maxsize=1024)
def _policy_header(policies: tuple[Policy, ...]) -> tuple[bytes, bytes]:
    return (b"ratelimit-policy", ", ".join(p.header_item for p in policies).encode())


def _headers_of(
    policies: tuple[Policy, ...], decision: Decision | None
) -> list[tuple[bytes, bytes]]:
    headers = [_policy_header(policies)]
    if decision is not None:
        headers.append((b"ratelimit", decision.header().encode()))
    return headers


async def _send_problem(
    send: Send,
    status: int,
    title: str,
    detail: str,
    headers: list[tuple[bytes, bytes]],
    **extra: Any,
) -> None:
    body = msgspec.json.encode(
        {"type": "about:blank", "status": status, "title": title, "detail": detail, **extra}
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", _PROBLEM_JSON),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _describe(policy: Policy) -> str:
    unit = "bytes of request bodies" if policy.counts_bytes else "requests"
    return f"{policy.limit} {unit} per {policy.window} s"


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Verdict(NamedTuple):
    decision: Decision | None  # None: Redis could not be asked
    closed: bool  # Redis could not be asked and the route fails closed


def _unavailable_verdict(rule: Rule | None, applied: tuple[Policy, ...]) -> _Verdict:
    """Redis could not be asked: fail closed on credential routes, open elsewhere."""
    if rule is not None and rule.fail_closed:
        record_rate_limit_fail_closed(rule.policies[0].name if rule.policies else applied[0].name)
        return _Verdict(None, closed=True)
    record_rate_limit_fail_open(applied[0].name)
    return _Verdict(None, closed=False)


async def _verdict(
    limiter: RateLimiter, plan: CheckPlan, rule: Rule | None, cost: int = 0
) -> _Verdict:
    try:
        return _Verdict(await limiter.check(plan, cost), closed=False)
    except StoreUnavailable:
        return _unavailable_verdict(rule, plan.applied)


class _Pending:
    """A check sent before its request ran (see _speculate): its verdict, worked out once."""

    __slots__ = ("_limiter", "_plan", "_reply", "_rule", "_verdict")

    def __init__(
        self, limiter: RateLimiter, plan: CheckPlan, reply: asyncio.Future[Any], rule: Rule | None
    ) -> None:
        self._limiter = limiter
        self._plan = plan
        self._reply = reply
        self._rule = rule
        self._verdict: _Verdict | None = None

    @property
    def applied(self) -> tuple[Policy, ...]:
        return self._plan.applied

    async def verdict(self) -> _Verdict:
        if self._verdict is None:
            try:
                decision = await self._limiter.settle(self._plan, self._reply)
                self._verdict = _Verdict(decision, closed=False)
            except StoreUnavailable:
                self._verdict = _unavailable_verdict(self._rule, self._plan.applied)
            finally:
                self._limiter.end_speculation(self._plan.keys)
        return self._verdict

    def abandon(self) -> None:
        """The request ended without asking (its handler failed before answering)."""
        if self._verdict is None:
            self._verdict = _Verdict(None, closed=False)
            self._limiter.end_speculation(self._plan.keys)
            self._reply.add_done_callback(_retrieve)


def _retrieve(reply: asyncio.Future[Any]) -> None:
    # Nobody awaits this reply: take its exception so asyncio does not log it as lost.
    if not reply.cancelled():
        reply.exception()


async def _refuse(send: Send, verdict: _Verdict, applied: tuple[Policy, ...]) -> bool:
    """Answer 503 or 429 when the verdict says so; True when it did."""
    if verdict.closed:
        await _send_problem(
            send,
            503,
            "Service unavailable",
            "rate limiting is unavailable, so this route is closed; retry shortly",
            [*_headers_of(applied, None), (b"retry-after", b"5")],
        )
        return True
    decision = verdict.decision
    if decision is None or decision.admitted:
        return False
    refused = decision.refused_by or applied[0]
    record_rate_limited(refused.name)
    retry_after = decision.retry_after
    await _send_problem(
        send,
        429,
        "Too many requests",
        f'rate limit "{refused.name}" exceeded ({_describe(refused)}); retry in {retry_after} s',
        [*_headers_of(applied, decision), (b"retry-after", str(retry_after).encode())],
        policy=refused.name,
    )
    return True


async def _speculate(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    pending: _Pending,
) -> None:
    """Run a safe (read-only) request while its check is in flight, and hold its response
    until the check answers: the Redis round trip overlaps the handler's own work.

    The check was written before the handler started (no task, no await), so by the time the
    handler answers the reply has usually arrived and holding the response costs nothing.
    Taken only when the caller's last check left room to spare, so a caller at or over its
    limit is refused before any handler runs; near the edge a refused request may have run its
    side-effect free handler, and its response is replaced by the 429.
    """
    scope["state"][_STATE_KEY] = pending
    applied = pending.applied
    refused = False

    async def send_when_decided(message: Message) -> None:
        nonlocal refused
        if refused:
            return  # the refusal went out instead; drop the handler's response
        if message["type"] == "http.response.start":
            verdict = await pending.verdict()
            if await _refuse(send, verdict, applied):
                refused = True
                return
            message["headers"] = [
                *message.get("headers", []),
                *_headers_of(applied, verdict.decision),
            ]
        await send(message)

    try:
        await app(scope, receive, send_when_decided)
    finally:
        pending.abandon()


def ratelimit_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith("/api/"):
            await app(scope, receive, send)
            return
        limiter = limiter_of(scope["app"].state.container)
        if not limiter.enabled:
            await app(scope, receive, send)
            return

        state: dict[str, Any] = scope.setdefault("state", {})
        principal = state.get("principal")
        if not isinstance(principal, Principal):
            principal = None
        rule = limiter.table.rule_for(scope["method"], scope["path"])
        policies = limiter.table.policies_for(rule, principal is not None)
        email: str | None = None
        if rule is not None and rule.needs_email:
            body, too_large, receive = await _peek_body(receive, _MAX_PEEK_BODY)
            if too_large:
                await _send_problem(
                    send,
                    413,
                    "Payload too large",
                    f"this route accepts a JSON body of at most {_MAX_PEEK_BODY} bytes",
                    _headers_of(policies, None),
                )
                return
            email = email_of(body) if body is not None else None
        cost = 0
        if rule is not None and rule.counts_bytes and not rule.needs_email:
            # A byte budget counts the body: read it (the handler would anyway) and replay it.
            body, too_large, receive = await _peek_body(receive, _MAX_INGEST_BODY)
            if too_large:
                await _send_problem(
                    send,
                    413,
                    "Payload too large",
                    f"this route accepts a body of at most {_MAX_INGEST_BODY} bytes",
                    _headers_of(policies, None),
                )
                return
            cost = len(body) if body is not None else 0
        # A signed-in caller's default policy counts by user id: the address is only worked
        # out for guests and per-IP policies.
        needs_ip = principal is None or any(p.key == "ip" for p in policies)
        ip = client_ip_for(scope, limiter.trusted) if needs_ip else ""
        keyed = keyed_policies(policies, principal, ip, email)
        if not keyed:  # a rule of e-mail policies only, and no e-mail: the handler rejects it
            await app(scope, receive, send)
            return
        applied = tuple(policy for policy, _ in keyed)
        plan = limiter.plan(applied, limiter.keys_of(keyed))

        if (
            scope["method"] in _SAFE_METHODS
            and (rule is None or not rule.fail_closed)
            and limiter.begin_speculation(plan.keys)
        ):
            reply = limiter.send(plan)
            if reply is not None:
                pending = _Pending(limiter, plan, reply, rule)
                await _speculate(app, scope, receive, send, pending)
                return
            limiter.end_speculation(plan.keys)

        verdict = await _verdict(limiter, plan, rule, cost)
        if await _refuse(send, verdict, applied):
            return
        state[_STATE_KEY] = verdict.decision
        extra = _headers_of(applied, verdict.decision)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


# --- the status route ---------------------------------------------------------------------------


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
    decision = request.state.get(_STATE_KEY)
    if isinstance(decision, _Pending):  # checked while the handler runs: wait for it
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


MIDDLEWARE = [ratelimit_middleware]
ROUTES = [rate_limit_status]
