"""What the limiter answers: the RateLimit headers, and the 413, 429 and 503 problems."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import msgspec
from litestar.types import Send

from lufy.observability import (
    record_rate_limit_fail_closed,
    record_rate_limit_fail_open,
    record_rate_limited,
)
from lufy.web.ratelimit.limiter import Decision
from lufy.web.ratelimit.policies import Policy, Rule

__all__ = ["Verdict", "headers_of", "refuse", "send_problem", "unavailable_verdict"]

_PROBLEM_JSON = b"application/problem+json"


@functools.lru_cache(maxsize=1024)
def _policy_header(policies: tuple[Policy, ...]) -> tuple[bytes, bytes]:
    return (b"ratelimit-policy", ", ".join(p.header_item for p in policies).encode())


def headers_of(
    policies: tuple[Policy, ...], decision: Decision | None
) -> list[tuple[bytes, bytes]]:
    headers = [_policy_header(policies)]
    if decision is not None:
        headers.append((b"ratelimit", decision.header().encode()))
    return headers


async def send_problem(
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


class Verdict(NamedTuple):
    decision: Decision | None  # None: Redis could not be asked
    closed: bool  # Redis could not be asked and the route fails closed


def unavailable_verdict(rule: Rule | None, applied: tuple[Policy, ...]) -> Verdict:
    """Redis could not be asked: fail closed on credential routes, open elsewhere."""
    if rule is not None and rule.fail_closed:
        record_rate_limit_fail_closed(rule.policies[0].name if rule.policies else applied[0].name)
        return Verdict(None, closed=True)
    record_rate_limit_fail_open(applied[0].name)
    return Verdict(None, closed=False)


async def refuse(send: Send, verdict: Verdict, applied: tuple[Policy, ...]) -> bool:
    """Answer 503 or 429 when the verdict says so; True when it did."""
    if verdict.closed:
        await send_problem(
            send,
            503,
            "Service unavailable",
            "rate limiting is unavailable, so this route is closed; retry shortly",
            [*headers_of(applied, None), (b"retry-after", b"5")],
        )
        return True
    decision = verdict.decision
    if decision is None or decision.admitted:
        return False
    refused = decision.refused_by or applied[0]
    record_rate_limited(refused.name)
    retry_after = decision.retry_after
    await send_problem(
        send,
        429,
        "Too many requests",
        f'rate limit "{refused.name}" exceeded ({_describe(refused)}); retry in {retry_after} s',
        [*headers_of(applied, decision), (b"retry-after", str(retry_after).encode())],
        policy=refused.name,
    )
    return True
