"""Entitlements: which plan a listener has now, read from the inline subscriptions model.

The streaming code calls `plan_of` when it issues a stream grant, in its own transaction: the
rows it reads are visible to the listener themselves (RLS) and to roles admin and system.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from lufy.payments.model import Plan, plan_for
from lufy.sqlfiles import load_queries

__all__ = ["DEFAULT_GRACE_DAYS", "PlanResolver", "plan_of", "resolver"]

_Q = load_queries("lufy.payments")
DEFAULT_GRACE_DAYS = 3
PlanResolver = Callable[[AsyncConnection[Any], uuid.UUID | None, datetime], Awaitable[Plan]]


async def plan_of(
    conn: AsyncConnection[Any],
    user_id: uuid.UUID | None,
    now: datetime,
    *,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> Plan:
    """ "premium" when any of the user's subscriptions grants it at `now`, else "free" (also for
    an anonymous listener)."""
    if user_id is None:
        return "free"
    cur = await conn.execute(_Q.user_subscriptions, {"user_id": user_id})
    for _sub_id, status, period_end, _cancel, past_due_since, _as_of in await cur.fetchall():
        plan = plan_for(
            status=status,
            current_period_end=period_end,
            past_due_since=past_due_since,
            now=now,
            grace_days=grace_days,
        )
        if plan == "premium":
            return "premium"
    return "free"


def resolver(grace_days: int = DEFAULT_GRACE_DAYS) -> PlanResolver:
    """`plan_of` with the configured grace period (`PAYMENTS_GRACE_DAYS`), for injection."""

    async def resolve(conn: AsyncConnection[Any], user_id: uuid.UUID | None, now: datetime) -> Plan:
        return await plan_of(conn, user_id, now, grace_days=grace_days)

    return resolve
