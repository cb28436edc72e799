"""Royalty statements: the month's money (the `payments_ledger` read model, a projection of the
log) split among artists by verified streams (`playback_sessions` rows with `is_stream`).

Revenue of a month, per subscriber (Stripe customer) and currency: what `invoice.paid` events
with `paid_at` in the month brought in, less what was refunded during the month (the growth of
each charge's cumulative refunded amount), never below zero. A refund so counts in the month it
happens, so a closed month's statement never changes afterwards.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from psycopg import AsyncConnection

from lufy.analytics.classify import listener_key
from lufy.db import Database
from lufy.payments.model import Model, Statement, Subscriber, split_royalties
from lufy.sqlfiles import load_queries

__all__ = ["month_bounds", "month_statements", "parse_month", "statement_rows"]

_Q = load_queries("lufy.payments")


def parse_month(text: str) -> date:
    try:
        parsed = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise ValueError(f"{text!r} is not a month as YYYY-MM") from None
    return parsed.date().replace(day=1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _fraction(value: float) -> Fraction:
    # Sampling weights are 1/rate as float8: read them back as the decimal they print as.
    return Fraction(Decimal(repr(value)))


async def _load(
    conn: AsyncConnection[Any], start: datetime, end: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], bytes]:
    cur = await conn.execute(_Q.month_ledger, {"start": start, "end": end})
    ledger = await cur.fetchall()
    cur = await conn.execute(_Q.month_streams, {"start": start, "end": end})
    streams = await cur.fetchall()
    cur = await conn.execute(_Q.hmac_key)
    row = await cur.fetchone()
    return ledger, streams, bytes(row[0]) if row else b""


def _revenue(
    ledger: Sequence[tuple[Any, ...]], start: datetime
) -> dict[str, dict[str, tuple[int, uuid.UUID | None]]]:
    """currency -> customer -> (net minor units in the month, user id if known)."""
    net: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    users: dict[str, uuid.UUID | None] = {}
    refunded_before: dict[str, int] = defaultdict(int)
    refunded_by_end: dict[str, int] = defaultdict(int)
    refund_owner: dict[str, tuple[str, str]] = {}
    for kind, object_id, customer, user_id, amount, currency, at in ledger:
        users.setdefault(customer, user_id)
        if kind == "payment":
            net[currency][customer] += int(amount)
            continue
        refund_owner[object_id] = (currency, customer)
        refunded_by_end[object_id] = max(refunded_by_end[object_id], int(amount))
        if at < start:
            refunded_before[object_id] = max(refunded_before[object_id], int(amount))
    for charge, (currency, customer) in refund_owner.items():
        net[currency][customer] -= refunded_by_end[charge] - refunded_before[charge]
    return {
        currency: {c: (max(0, amount), users.get(c)) for c, amount in per.items()}
        for currency, per in net.items()
    }


async def month_statements(
    db: Database, month: date, model: Model, share: Decimal
) -> list[Statement]:
    """The month's statement in each currency that had revenue (as of now for a running
    month: an estimate)."""
    start, end = month_bounds(month)
    async with db.transaction(role="system") as conn:
        ledger, stream_rows, secret = await _load(conn, start, end)
    by_listener: dict[str, dict[uuid.UUID, Fraction]] = defaultdict(dict)
    totals: dict[uuid.UUID, Fraction] = defaultdict(Fraction)
    for key, artist, n in stream_rows:
        by_listener[key][artist] = _fraction(n)
        totals[artist] += _fraction(n)
    statements = []
    for currency, customers in sorted(_revenue(ledger, start).items()):
        subscribers = []
        for customer, (amount, user_id) in sorted(customers.items()):
            own: dict[uuid.UUID, Fraction] = {}
            if user_id is not None and secret:
                own = by_listener.get(listener_key(secret, f"u:{user_id}"), {})
            subscribers.append(Subscriber(key=customer, net_minor=amount, streams=own))
        statements.append(
            split_royalties(
                currency=currency,
                model=model,
                subscribers=subscribers,
                streams=dict(totals),
                share=share,
            )
        )
    return statements


def statement_rows(month: date, statements: Sequence[Statement]) -> list[dict[str, Any]]:
    """One row per artist and currency, for CSV and JSON output."""
    return [
        {
            "month": month.strftime("%Y-%m"),
            "model": s.model,
            "currency": s.currency,
            "artist_id": str(line.artist_id),
            "streams": float(line.streams),
            "amount_minor": line.amount_minor,
        }
        for s in statements
        for line in s.artists
    ]


def _months(start: datetime, end: datetime) -> list[date]:
    first = start.astimezone(UTC).date().replace(day=1)
    months = []
    while month_bounds(first)[0] < end:
        months.append(first)
        first = month_bounds(first)[1].date()
    return months


async def _streams(
    db: Database, artist_id: uuid.UUID | None, start: datetime, end: datetime
) -> Fraction:
    async with db.transaction(role="system") as conn:
        cur = await conn.execute(
            _Q.artist_streams, {"artist_id": artist_id, "start": start, "end": end}
        )
        row = await cur.fetchone()
    return _fraction(float(row[0])) if row else Fraction(0)


async def artist_revenue(
    db: Database,
    artist_id: uuid.UUID | None,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    share: Decimal,
    model: Model = "pro-rata",
) -> tuple[str, int, bool, float]:
    """(currency, amount_minor, final, streams) of an artist (None: every artist) for
    [start, end): each month's statement amount, prorated by the share of the month's streams
    that fall in the range. Final when every month the range touches has closed."""
    streams = Fraction(0)
    by_currency: dict[str, Fraction] = defaultdict(Fraction)
    months = _months(start, end)
    for month in months:
        m_start, m_end = month_bounds(month)
        in_range = await _streams(db, artist_id, max(start, m_start), min(end, m_end))
        streams += in_range
        for statement in await month_statements(db, month, model, share):
            lines = [a for a in statement.artists if artist_id in (None, a.artist_id)]
            month_streams = sum((a.streams for a in lines), Fraction(0))
            if month_streams > 0:
                paid = sum(a.amount_minor for a in lines)
                by_currency[statement.currency] += paid * in_range / month_streams
    currency = max(by_currency, key=lambda c: (by_currency[c], c)) if by_currency else "usd"
    amount = by_currency.get(currency, Fraction(0))
    final = bool(months) and now >= month_bounds(months[-1])[1]
    return currency, int(amount + Fraction(1, 2)), final, float(streams)
