"""Retention of raw analytics events (`ANALYTICS_RAW_RETENTION_DAYS`): `expire_raw_analytics`.

The listener ids of analytics events and of old stream grants are sealed, outermost, with the
key of their UTC month (privacy.listeners). A month *ages out* when all of it is older than the
retention period: its key is deleted from `lufy.data_keys` and the month marked destroyed in
`lufy.analytics_months` (never given a key again), recorded as `operations.analytics_raw_expired`
(stream operations/analytics_retention). From then on those fields open as "[erased]". The
events stay (the log is append-only) with what the aggregates need: `listener_key`, session,
track, artist, times, durations; every dashboard number is counted over those, so rebuilding
the analytics projection gives the same numbers.

Runs from the `analytics-refresh` job (about once a minute, a no-op unless a month has just
aged out) and from `lufy analytics expire-raw`. Idempotent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from lufy.eventstore.codec import default_codec
from lufy.operations.events import AnalyticsRawExpired
from lufy.privacy.listeners import month_of
from lufy.sqlfiles import load_queries

__all__ = ["expire_raw_analytics", "first_kept_month"]

_Q = load_queries("lufy.privacy", "listeners.sql")
_KEYS = load_queries("lufy.privacy", "keys.sql")


def first_kept_month(days: int, now: datetime) -> date:
    """The month holding the cutoff (`now` - `days`): every month before it is older than the
    retention period in full; this one and later ones are kept."""
    return month_of(now - timedelta(days=days))


def expire_raw_analytics(
    conn: psycopg.Connection[Any], days: int, *, now: datetime | None = None
) -> AnalyticsRawExpired | None:
    """Destroy the keys of the months that aged out (see the module), in one transaction of its
    own on `conn`; None when none had to go."""
    before = first_kept_month(days, now or datetime.now(UTC))
    with conn.transaction():
        conn.execute(_KEYS.as_system)
        rows = conn.execute(_Q.expire_months, {"before": before}).fetchall()
        if not rows:
            return None
        conn.execute(_Q.delete_keys, {"subjects": [row[1] for row in rows]})
        report = AnalyticsRawExpired(
            retention_days=days,
            months=sorted(row[0].isoformat() for row in rows),
            before=before.isoformat(),
        )
        type_name, version, payload = default_codec().encode(report)
        conn.execute(
            _Q.record_expiry,
            {"event_id": uuid.uuid4(), "type": type_name, "version": version, "data": payload},
        )
    return report
