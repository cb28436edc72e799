"""Policies, the rules routes declare with `@rate_limited(rule)`, and the table that resolves them.

A route's extra policies are declared on its handler (`rate_limited` puts the `Rule` in the
handler's Litestar `opt`); the middleware reads the matched handler's opt. The `PolicyTable`
holds the callers' default policies (`user`, `guest`) and optional overrides: `routes` by
(METHOD, path) and `groups` by path prefix, for a process or a test that wants other limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from lufy.settings import Settings

__all__ = [
    "ACCOUNT_DELETE",
    "INGEST",
    "INGEST_BYTES",
    "MAGIC_LINK",
    "MAGIC_LINK_VERIFY",
    "OPT_KEY",
    "PASSWORD_CHANGE",
    "PASSWORD_FORGOT",
    "PASSWORD_RESET",
    "REFRESH",
    "SIGN_IN",
    "SIGN_UP",
    "STRIPE_WEBHOOK",
    "VERIFY_EMAIL",
    "VERIFY_EMAIL_RESEND",
    "KeyKind",
    "Policy",
    "PolicyTable",
    "Rule",
    "Unit",
    "rate_limited",
]

KeyKind = Literal["caller", "ip", "email"]
Unit = Literal["requests", "content-bytes"]

# The key of a route handler's `opt` that holds its Rule.
OPT_KEY = "rate_limit"


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


_Handler = TypeVar("_Handler")


def rate_limited(rule: Rule) -> Callable[[_Handler], _Handler]:
    """Declare `rule` on a Litestar route handler; put it above the route decorator:

    ```python
    @rate_limited(SIGN_IN)
    @post("/sign-in")
    async def sign_in(...) -> ...: ...
    ```
    """

    def declare(handler: _Handler) -> _Handler:
        opt: dict[str, Any] = getattr(handler, "opt")  # noqa: B009 (any route handler)
        opt[OPT_KEY] = rule
        return handler

    return declare


# --- the rules of the routes that declare them (CONTRACT.md section 3) ---------------------------
# Per e-mail limits stop guessing one account's password from many addresses; per IP limits stop
# one address from walking through many accounts. Routes that present a credential fail closed.

_15_MINUTES = 15 * 60
_10_MINUTES = 10 * 60
_HOUR = 60 * 60
# The analytics ingestion budget per caller: 8 MiB per 10 minutes (about 14 KB/s sustained),
# eight full 1 MiB batches at once. A player's beacons use a few hundred bytes a second.
INGEST_BYTES = 8 * 1024 * 1024


def _closed(*policies: Policy) -> Rule:
    return Rule(policies, fail_closed=True)


SIGN_IN = _closed(
    Policy("sign-in-ip", 20, _15_MINUTES, "ip"), Policy("sign-in-email", 5, _15_MINUTES, "email")
)
# Sign-up answers 409 for a registered address: per address too, or it is an oracle of who has
# an account that many IPs can query without limit.
SIGN_UP = _closed(Policy("sign-up-ip", 10, _HOUR, "ip"), Policy("sign-up-email", 5, _HOUR, "email"))
PASSWORD_FORGOT = _closed(
    Policy("password-forgot-ip", 10, _15_MINUTES, "ip"),
    Policy("password-forgot-email", 3, _HOUR, "email"),
)
PASSWORD_RESET = _closed(Policy("password-reset-ip", 10, _15_MINUTES, "ip"))
MAGIC_LINK = _closed(
    Policy("magic-link-ip", 10, _15_MINUTES, "ip"),
    Policy("magic-link-email", 3, _15_MINUTES, "email"),
)
MAGIC_LINK_VERIFY = _closed(Policy("magic-link-verify-ip", 10, _15_MINUTES, "ip"))
VERIFY_EMAIL = _closed(Policy("verify-email-ip", 10, _15_MINUTES, "ip"))
VERIFY_EMAIL_RESEND = _closed(Policy("verify-email-resend-ip", 5, _HOUR, "ip"))
PASSWORD_CHANGE = _closed(Policy("password-change-ip", 10, _15_MINUTES, "ip"))
# Refresh presents a credential too; CONTRACT.md says auth routes fail closed.
REFRESH = _closed(Policy("refresh-ip", 60, _15_MINUTES, "ip"))
# Erasing the account checks the password (or an e-mailed token): as guessable as a sign-in with
# a stolen access token.
ACCOUNT_DELETE = _closed(Policy("account-delete-ip", 10, _15_MINUTES, "ip"))
# Players send beacons every few seconds, many listeners share one NAT address, and a batch
# carries up to 500 events: ingestion gets its own, wider policy per caller, and a budget of body
# bytes, since what it accepts is kept in the log for ever.
INGEST = Rule(
    (
        Policy("ingest", 600, 60, "caller"),
        Policy("ingest-bytes", INGEST_BYTES, _10_MINUTES, "caller", "content-bytes"),
    ),
    include_default=False,
)
# Stripe delivers bursts of webhooks from a few addresses; they are signed, not guessed.
STRIPE_WEBHOOK = Rule((Policy("stripe-webhook", 1200, 60, "ip"),), include_default=False)


@dataclass(frozen=True)
class PolicyTable:
    """Default policies for users and guests, plus overrides per route and per route group.

    A request's rule is, in order: `routes[(METHOD, path)]`, the rule its handler declares
    (`rate_limited`), the longest prefix of `groups` that matches its path, or none.
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
        """The table from settings; `routes` entries replace the rules their handlers declare."""
        user, guest = settings.rate_limit_user, settings.rate_limit_guest
        return cls(
            user=Policy("user", user.limit, user.window_seconds, "caller"),
            guest=Policy("guest", guest.limit, guest.window_seconds, "caller"),
            routes=dict(routes or {}),
            groups=dict(groups or {}),
        )

    def rule_for(self, method: str, path: str, declared: Rule | None = None) -> Rule | None:
        """The rule of a request; `declared` is the one its route handler declares."""
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        rule = self.routes.get((method, path))
        if rule is not None:
            return rule
        if declared is not None:
            return declared
        for prefix, group_rule in self._groups_by_length:
            if path.startswith(prefix):
                return group_rule
        return None

    def policies_for(self, rule: Rule | None, signed_in: bool) -> tuple[Policy, ...]:
        default = self.user if signed_in else self.guest
        if rule is None:
            return (default,)
        return (default, *rule.policies) if rule.include_default else rule.policies
