"""The ASGI middleware: every `/api` request is checked before (or, for safe reads, while) it runs.

It runs per matched route (Litestar app middleware), after accounts' authentication, so it
knows the caller and the route handler, whose `opt` holds the rule it declares.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from lufy.web.auth import Principal
from lufy.web.clientip import client_ip_for
from lufy.web.ratelimit.keys import email_of, keyed_policies, peek_body
from lufy.web.ratelimit.limiter import CheckPlan, RateLimiter, StoreUnavailable, limiter_of
from lufy.web.ratelimit.policies import OPT_KEY, Policy, Rule
from lufy.web.ratelimit.responses import (
    Verdict,
    headers_of,
    refuse,
    send_problem,
    unavailable_verdict,
)

__all__ = ["STATE_KEY", "Pending", "ratelimit_middleware"]

STATE_KEY = "rate_limit"
# An e-mail keyed policy needs the JSON body; credential bodies are tiny, and refusing a padded
# one keeps an attacker from hiding the address past what we are willing to read.
_MAX_PEEK_BODY = 16 * 1024
# The largest body the ingestion route accepts (its handler says so with a 413 too).
_MAX_INGEST_BODY = 1024 * 1024
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _verdict(
    limiter: RateLimiter, plan: CheckPlan, rule: Rule | None, cost: int = 0
) -> Verdict:
    try:
        return Verdict(await limiter.check(plan, cost), closed=False)
    except StoreUnavailable:
        return unavailable_verdict(rule, plan.applied)


class Pending:
    """A check sent before its request ran (see _speculate): its verdict, worked out once."""

    __slots__ = ("_limiter", "_plan", "_reply", "_rule", "_verdict")

    def __init__(
        self, limiter: RateLimiter, plan: CheckPlan, reply: asyncio.Future[Any], rule: Rule | None
    ) -> None:
        self._limiter = limiter
        self._plan = plan
        self._reply = reply
        self._rule = rule
        self._verdict: Verdict | None = None

    @property
    def applied(self) -> tuple[Policy, ...]:
        return self._plan.applied

    async def verdict(self) -> Verdict:
        if self._verdict is None:
            try:
                decision = await self._limiter.settle(self._plan, self._reply)
                self._verdict = Verdict(decision, closed=False)
            except StoreUnavailable:
                self._verdict = unavailable_verdict(self._rule, self._plan.applied)
            finally:
                self._limiter.end_speculation(self._plan.keys)
        return self._verdict

    def abandon(self) -> None:
        """The request ended without asking (its handler failed before answering)."""
        if self._verdict is None:
            self._verdict = Verdict(None, closed=False)
            self._limiter.end_speculation(self._plan.keys)
            self._reply.add_done_callback(_retrieve)


def _retrieve(reply: asyncio.Future[Any]) -> None:
    # Nobody awaits this reply: take its exception so asyncio does not log it as lost.
    if not reply.cancelled():
        reply.exception()


async def _speculate(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    pending: Pending,
) -> None:
    """Run a safe (read-only) request while its check is in flight, and hold its response
    until the check answers: the Redis round trip overlaps the handler's own work.

    The check was written before the handler started (no task, no await), so by the time the
    handler answers the reply has usually arrived and holding the response costs nothing.
    Taken only when the caller's last check left room to spare, so a caller at or over its
    limit is refused before any handler runs; near the edge a refused request may have run its
    side-effect free handler, and its response is replaced by the 429.
    """
    scope["state"][STATE_KEY] = pending
    applied = pending.applied
    refused = False

    async def send_when_decided(message: Message) -> None:
        nonlocal refused
        if refused:
            return  # the refusal went out instead; drop the handler's response
        if message["type"] == "http.response.start":
            verdict = await pending.verdict()
            if await refuse(send, verdict, applied):
                refused = True
                return
            message["headers"] = [
                *message.get("headers", []),
                *headers_of(applied, verdict.decision),
            ]
        await send(message)

    try:
        await app(scope, receive, send_when_decided)
    finally:
        pending.abandon()


class _Body(NamedTuple):
    receive: Receive  # replays what was read
    email: str | None
    cost: int  # body bytes, counted by byte policies


async def _read_body(
    rule: Rule, receive: Receive, send: Send, policies: tuple[Policy, ...]
) -> _Body | None:
    """Peek at the body when the rule needs it (its e-mail, or its size for a byte budget);
    None when it was too large and a 413 went out instead."""
    if rule.needs_email:
        limit, what = _MAX_PEEK_BODY, "a JSON body"
    elif rule.counts_bytes:
        # A byte budget counts the body: read it (the handler would anyway) and replay it.
        limit, what = _MAX_INGEST_BODY, "a body"
    else:
        return _Body(receive, None, 0)
    body, too_large, replay = await peek_body(receive, limit)
    if too_large:
        detail = f"this route accepts {what} of at most {limit} bytes"
        await send_problem(send, 413, "Payload too large", detail, headers_of(policies, None))
        return None
    if rule.needs_email:
        return _Body(replay, email_of(body) if body is not None else None, 0)
    return _Body(replay, None, len(body) if body is not None else 0)


class _Check(NamedTuple):
    limiter: RateLimiter
    plan: CheckPlan
    rule: Rule | None


def _rule_of(scope: HTTPScope, limiter: RateLimiter) -> Rule | None:
    """The limiter table's override, else the rule the matched handler declares."""
    handler = scope.get("route_handler")
    declared = handler.opt.get(OPT_KEY) if handler is not None else None
    return limiter.table.rule_for(scope["method"], scope["path"], declared)


async def _check_then_run(
    app: ASGIApp, scope: Scope, send: Send, body: _Body, check: _Check
) -> None:
    """Check the request, then run it (with the RateLimit headers) unless it was refused."""
    limiter, plan, rule = check
    verdict = await _verdict(limiter, plan, rule, body.cost)
    if await refuse(send, verdict, plan.applied):
        return
    scope["state"][STATE_KEY] = verdict.decision
    extra = headers_of(plan.applied, verdict.decision)

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    await app(scope, body.receive, send_with_headers)


async def _limit(app: ASGIApp, scope: HTTPScope, receive: Receive, send: Send) -> None:
    limiter = limiter_of(scope["app"].state.container)
    if not limiter.enabled:
        await app(scope, receive, send)
        return
    state: dict[str, Any] = scope.setdefault("state", {})
    principal = state.get("principal")
    if not isinstance(principal, Principal):
        principal = None
    rule = _rule_of(scope, limiter)
    policies = limiter.table.policies_for(rule, principal is not None)
    body = (
        _Body(receive, None, 0) if rule is None else await _read_body(rule, receive, send, policies)
    )
    if body is None:
        return
    # A signed-in caller's default policy counts by user id: the address is only worked out
    # for guests and per-IP policies.
    needs_ip = principal is None or any(p.key == "ip" for p in policies)
    ip = client_ip_for(scope, limiter.trusted) if needs_ip else ""
    keyed = keyed_policies(policies, principal, ip, body.email)
    if not keyed:  # a rule of e-mail policies only, and no e-mail: the handler rejects it
        await app(scope, body.receive, send)
        return
    plan = limiter.plan(tuple(policy for policy, _ in keyed), limiter.keys_of(keyed))
    if (
        scope["method"] in _SAFE_METHODS
        and (rule is None or not rule.fail_closed)
        and limiter.begin_speculation(plan.keys)
    ):
        reply = limiter.send(plan)
        if reply is not None:
            await _speculate(app, scope, body.receive, send, Pending(limiter, plan, reply, rule))
            return
        limiter.end_speculation(plan.keys)
    await _check_then_run(app, scope, send, body, _Check(limiter, plan, rule))


def ratelimit_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith("/api/"):
            await app(scope, receive, send)
            return
        await _limit(app, scope, receive, send)

    return middleware
