"""The limiter: one EVALSHA of `ratelimit.lua` checks (and records) every policy of a request.

The script is sent once with `SCRIPT LOAD` and then called by `EVALSHA`; after a Redis restart
the `NOSCRIPT` reply makes the limiter load it again. See docs/ratelimit.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from lufy.attached import Attached
from lufy.logs import get_logger
from lufy.settings import Settings
from lufy.web.clientip import TrustedProxies
from lufy.web.ratelimit.policies import Policy, PolicyTable
from lufy.web.ratelimit_store import ReplyError, ScriptStore, StoreError

__all__ = ["CheckPlan", "Decision", "RateLimiter", "StoreUnavailable", "limiter_of"]

_log = get_logger("lufy.web.ratelimit")
_SCRIPT = (
    resources.files("lufy.web.ratelimit").joinpath("ratelimit.lua").read_text(encoding="utf-8")
)
_KEY_PREFIX = "lufy:rl"


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


_LIMITERS: Attached[RateLimiter] = Attached(lambda c: RateLimiter.from_settings(c.settings))


def limiter_of(container: Any) -> RateLimiter:
    """The container's limiter, built from its settings on first use (closed by the app's
    lifespan, or by whoever passed it to `use_limiter`)."""
    return _LIMITERS.of(container)


def use_limiter(container: Any, limiter: RateLimiter) -> None:
    """Serve the container's requests with this limiter (tests: another policy table)."""
    _LIMITERS.set(container, limiter)
