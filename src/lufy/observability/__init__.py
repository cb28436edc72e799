"""Prometheus metrics shared by the API, projector and workers.

Two kinds of metric live here:

- *Process counters* (`counters`: HTTP requests, analytics ingestion outcomes, rate-limit
  decisions, job outcomes) are incremented where the thing happens, through the small
  `record_*` helpers.
- *State read at scrape time* (`scrape`: projection checkpoints and lag, job queue depth, job
  outcomes, database pool usage, whether PostgreSQL and Redis answer) is collected by
  `render_metrics` from PostgreSQL, Redis and the pool.
"""

from __future__ import annotations

from lufy.observability.counters import (
    ANALYTICS_EVENTS,
    JOB_METRICS_KEY,
    QUEUES,
    RATE_LIMIT_DECISIONS,
    REGISTRY,
    REQUEST_LATENCY,
    REQUESTS,
    REQUESTS_IN_FLIGHT,
    JobMetricsMiddleware,
    metrics_middleware,
    record_ingest,
    record_job_outcome,
    record_rate_limit_fail_closed,
    record_rate_limit_fail_open,
    record_rate_limited,
)
from lufy.observability.scrape import LAG_CAP, SCRAPE_CACHE_SECONDS, ScrapeCache, render_metrics

__all__ = [
    "ANALYTICS_EVENTS",
    "JOB_METRICS_KEY",
    "LAG_CAP",
    "QUEUES",
    "RATE_LIMIT_DECISIONS",
    "REGISTRY",
    "REQUESTS",
    "REQUESTS_IN_FLIGHT",
    "REQUEST_LATENCY",
    "SCRAPE_CACHE_SECONDS",
    "JobMetricsMiddleware",
    "ScrapeCache",
    "metrics_middleware",
    "record_ingest",
    "record_job_outcome",
    "record_rate_limit_fail_closed",
    "record_rate_limit_fail_open",
    "record_rate_limited",
    "render_metrics",
]
