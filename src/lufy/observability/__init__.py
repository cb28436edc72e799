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

from lufy.observability import counters
from lufy.observability.counters import *  # noqa: F403 (its __all__, re-exported below)
from lufy.observability.scrape import (
    LAG_CAP,
    SCRAPE_CACHE_SECONDS,
    ScrapeCache,
    render_metrics,
    scrape_cache,
)

__all__ = ["LAG_CAP", "SCRAPE_CACHE_SECONDS", "ScrapeCache", "render_metrics", "scrape_cache"]
__all__ += counters.__all__
