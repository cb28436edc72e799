"""The `analytics-refresh` job: refresh analytics.track_daily and artist_daily (changed days).

Idempotent by nature (a refresh recomputes from the read models), so any job key will do; the
scheduler enqueues it about once a minute and `lufy analytics refresh` does the same at once.
"""

from __future__ import annotations

from typing import Any

from lufy.jobs import job
from lufy.jobs.broker import job_runtime
from lufy.logs import get_logger
from lufy.privacy.retention import expire_raw_analytics
from lufy.sqlfiles import load_queries

__all__ = ["refresh_analytics"]

_Q = load_queries("lufy.analytics")
_log = get_logger(__name__)


@job(queue="analytics-refresh", max_retries=3, time_limit_ms=900_000)
def refresh_analytics(payload: dict[str, Any], *, job_key: str) -> None:
    runtime = job_runtime()
    with runtime.pool.connection() as conn:
        rows = conn.execute(_Q.refresh_views).fetchall()
    for name, seconds in rows:
        _log.info("analytics view refreshed", view=name, seconds=seconds, job_key=job_key)
    days = runtime.settings.ANALYTICS_RAW_RETENTION_DAYS
    if days is not None:
        # Retention rides on this periodic job: a no-op unless a month has just aged out.
        with runtime.pool.connection() as conn:
            expired = expire_raw_analytics(conn, days)
        if expired is not None:
            _log.info("raw analytics months expired", months=expired.months, job_key=job_key)
