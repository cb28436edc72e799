"""Entitlements: which plan a listener has now, read from the inline subscriptions model.

The streaming code asks for the plan when it issues a stream grant, in the grant's own
transaction: the rows are visible to the listener themselves (RLS) and to roles admin and
system. The grant's statement reads them itself (sql/0821_stream_grant_tier.sql, in the order of
`user_subscriptions`) and hands them to `Entitlements.tier_of`; `plan_of` reads them on a
connection, for everything else.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from lufy.payments.model import Plan, plan_for
from lufy.sqlfiles import load_queries

__all__ = [
    "DEFAULT_GRACE_DAYS",
    "Entitlements",
    "PlanResolver",
    "plan_of",
    "plan_of_subscriptions",
    "resolver",
]

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
    rows = await cur.fetchall()
    return plan_of_subscriptions(
        ((status, end, past_due) for _id, status, end, _cancel, past_due, _as_of in rows),
        now,
        grace_days,
    )


def plan_of_subscriptions(
    subscriptions: Iterable[tuple[str, datetime | None, datetime | None]],
    now: datetime,
    grace_days: int,
) -> Plan:
    """ "premium" when any of these (status, current period end, past due since) grants it at
    `now`, else "free"."""
    for status, period_end, past_due_since in subscriptions:
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


class Entitlements:
    """The plan with the configured grace period (`PAYMENTS_GRACE_DAYS`), for injection as the
    catalog's tier resolver: called with a connection it reads (`plan_of`); as a
    `lufy.catalog.grants.TierRule` it is given the subscriptions the grant's statement read."""

    subscriptions = True

    def __init__(self, grace_days: int = DEFAULT_GRACE_DAYS) -> None:
        self.grace_days = grace_days

    async def __call__(
        self, conn: AsyncConnection[Any], user_id: uuid.UUID | None, now: datetime
    ) -> Plan:
        return await plan_of(conn, user_id, now, grace_days=self.grace_days)

    def tier_of(
        self, subscriptions: Iterable[tuple[str, datetime | None, datetime | None]], now: datetime
    ) -> Plan:
        return plan_of_subscriptions(subscriptions, now, self.grace_days)


def resolver(grace_days: int = DEFAULT_GRACE_DAYS) -> Entitlements:
    """The entitlements with the configured grace period, for injection."""
    return Entitlements(grace_days)
