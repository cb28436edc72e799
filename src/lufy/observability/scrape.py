"""State read at scrape time, so it is correct whichever process is scraped and whichever did
the work: projection checkpoints and lag, job queue depth, job outcomes, database pool usage,
whether PostgreSQL and Redis answer. Queries are in `scrape.sql`.

A scrape never fails because a dependency is down: each source is bounded by a timeout and its
`lufy_up{component=...}` gauge says whether it answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lufy.attached import Attached
from lufy.db import Database
from lufy.logs import get_logger
from lufy.observability.counters import JOB_METRICS_KEY, MULTIPROC_DIR, QUEUES, REGISTRY
from lufy.sqlfiles import load_queries

__all__ = [
    "LAG_CAP",
    "SCRAPE_CACHE_SECONDS",
    "ScrapeCache",
    "Sources",
    "render_metrics",
    "scrape_cache",
]

_log = get_logger("lufy.observability")
_QUERIES = load_queries("lufy.observability", "scrape.sql")
DRAMATIQ_NAMESPACE = "dramatiq"
# How long one scrape waits for PostgreSQL or Redis before reporting it as down.
SCRAPE_TIMEOUT = 2.0


class Sources(Protocol):
    """What a scrape reads (the process's container): the pool and Redis."""

    @property
    def db(self) -> Database: ...

    @property
    def redis(self) -> Any: ...


class _Snapshot(Collector):
    """A collector that yields families computed before `generate_latest` runs."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


async def _bounded(
    name: str, up: dict[str, int], probe: Callable[[], Awaitable[list[Metric]]]
) -> list[Metric]:
    try:
        families = await asyncio.wait_for(probe(), timeout=SCRAPE_TIMEOUT)
    except Exception as exc:  # the scrape reports the dependency as down instead of failing
        _log.debug("metrics source unavailable", source=name, error=type(exc).__name__)
        up[name] = 0
        return []
    up.setdefault(name, 1)
    return families


def _pool_families(container: Sources) -> list[Metric]:
    stats = container.db.pool.get_stats()
    size = GaugeMetricFamily(
        "lufy_db_pool_connections", "Connections of this process's pool by state", labels=["state"]
    )
    total = int(stats.get("pool_size", 0))
    available = int(stats.get("pool_available", 0))
    size.add_metric(["open"], total)
    size.add_metric(["idle"], available)
    size.add_metric(["in_use"], max(total - available, 0))
    limits = GaugeMetricFamily(
        "lufy_db_pool_limit", "The pool's configured size bounds", labels=["bound"]
    )
    limits.add_metric(["min"], int(stats.get("pool_min", 0)))
    limits.add_metric(["max"], int(stats.get("pool_max", 0)))
    waiting = GaugeMetricFamily(
        "lufy_db_pool_requests_waiting", "Requests queued for a connection right now"
    )
    waiting.add_metric([], int(stats.get("requests_waiting", 0)))
    requests = CounterMetricFamily(
        "lufy_db_pool_requests", "Connections handed out by the pool since the process started"
    )
    requests.add_metric([], int(stats.get("requests_num", 0)))
    errors = CounterMetricFamily(
        "lufy_db_pool_errors",
        "Pool errors since start: timeouts waiting for a connection, failed connection "
        "attempts, connections found broken",
        labels=["kind"],
    )
    errors.add_metric(["request_timeout"], int(stats.get("requests_errors", 0)))
    errors.add_metric(["connect_failed"], int(stats.get("connections_errors", 0)))
    errors.add_metric(["connection_lost"], int(stats.get("connections_lost", 0)))
    return [size, limits, waiting, requests, errors]


async def _redis_families(container: Sources) -> list[Metric]:
    redis = container.redis
    pipe = redis.pipeline(transaction=False)
    for queue in QUEUES:
        full = f"{DRAMATIQ_NAMESPACE}:{queue}"
        pipe.llen(full)
        pipe.hlen(f"{full}.msgs")
        pipe.hlen(f"{full}.DQ.msgs")
        pipe.zcard(f"{full}.XQ")
    pipe.hgetall(JOB_METRICS_KEY)
    results = await pipe.execute()
    depth = GaugeMetricFamily(
        "lufy_job_queue_depth",
        "Jobs per queue by state: ready (waiting for a worker), in_flight (taken, not acked), "
        "delayed (retry backoff or eta), dead (dead-letter queue)",
        labels=["queue", "state"],
    )
    for i, queue in enumerate(QUEUES):
        ready, stored, delayed, dead = (int(x) for x in results[i * 4 : i * 4 + 4])
        depth.add_metric([queue, "ready"], ready)
        depth.add_metric([queue, "in_flight"], max(stored - ready, 0))
        depth.add_metric([queue, "delayed"], delayed)
        depth.add_metric([queue, "dead"], dead)
    jobs = CounterMetricFamily(
        "lufy_jobs",
        "Jobs by queue, actor and outcome (enqueued, succeeded, failed attempt, skipped, dead), "
        "counted by every projector and worker process into Redis",
        labels=["queue", "actor", "outcome"],
    )
    counted: dict[bytes | str, bytes | str] = results[-1] or {}
    for field, value in sorted(counted.items()):
        text = field.decode() if isinstance(field, bytes) else field
        parts = text.split("|")
        if len(parts) == 3:
            jobs.add_metric(parts, int(value))
    return [depth, jobs]


# name, position, lag_events, lag_seconds, state
ProjectionRow = tuple[str, int, int, float, str]
_PROJECTION_STATES = ("running", "catching_up", "idle", "stopped", "failed", "rebuilding")
# Lag counts stop here: beyond it the exact number no longer changes what an operator does,
# and every scrape must stay cheap (a reader far behind would otherwise cost a long index scan).
LAG_CAP = 100_000


async def _projection_rows(conn: Any, *, has_state: bool) -> list[ProjectionRow]:
    """Each reader of the log (projection or reactor): checkpoint and lag from
    `lufy.checkpoints`, state from `lufy.projection_state` (failed, rebuilding, ...)."""
    states: dict[str, str] = {}
    if has_state:
        cur = await conn.execute(_QUERIES.projection_states)
        states = {str(name): str(state) for name, state in await cur.fetchall()}
    cur = await conn.execute(_QUERIES.checkpoint_lag, {"cap": LAG_CAP})
    result: list[ProjectionRow] = []
    for name, position, behind, lag_seconds, _idle in await cur.fetchall():
        state = states.get(str(name)) or "running"
        if state == "running" and int(behind) > 0:
            state = "catching_up"
        result.append((str(name), int(position), int(behind), float(lag_seconds), state))
    return result


async def _job_rows(conn: Any) -> list[tuple[str, str, int, int]]:
    cur = await conn.execute(_QUERIES.job_counts)
    return [(str(q), str(s), int(n), int(a)) for q, s, n, a in await cur.fetchall()]


async def _database_families(container: Sources) -> list[Metric]:
    async with container.db.connection() as conn:
        cur = await conn.execute(_QUERIES.log_head)
        row = await cur.fetchone()
        cur = await conn.execute(_QUERIES.optional_tables)
        has_state, has_jobs = await cur.fetchone() or (False, False)
        rows = await _projection_rows(conn, has_state=bool(has_state))
        jobs = await _job_rows(conn) if has_jobs else []
    head = GaugeMetricFamily(
        "lufy_event_log_head_position", "Highest global_position in lufy.events"
    )
    head.add_metric([], int(row[0]) if row else 0)
    return [head, *_projection_families(rows), *_ledger_families(jobs)]


def _projection_families(rows: list[ProjectionRow]) -> list[Metric]:
    position = GaugeMetricFamily(
        "lufy_projection_checkpoint_position",
        "The global_position each projection (or reactor) has applied up to",
        labels=["projection"],
    )
    lag_events = GaugeMetricFamily(
        "lufy_projection_lag_events",
        f"Committed events a projection has not applied yet (counted up to {LAG_CAP})",
        labels=["projection"],
    )
    lag_seconds = GaugeMetricFamily(
        "lufy_projection_lag_seconds",
        "Age of the oldest committed event a projection has not applied yet (0 when caught up)",
        labels=["projection"],
    )
    state = GaugeMetricFamily(
        "lufy_projection_state",
        "1 for the projection's current state (running, catching_up, stopped, failed, ...)",
        labels=["projection", "state"],
    )
    for name, pos, levents, lseconds, current in rows:
        position.add_metric([name], pos)
        lag_events.add_metric([name], levents)
        lag_seconds.add_metric([name], lseconds)
        for known in sorted({*_PROJECTION_STATES, current}):
            state.add_metric([name, known], 1 if known == current else 0)
    return [position, lag_events, lag_seconds, state]


def _ledger_families(jobs: list[tuple[str, str, int, int]]) -> list[Metric]:
    tracked = GaugeMetricFamily(
        "lufy_jobs_tracked",
        "Jobs recorded in the lufy.jobs ledger per queue and status (pending, running, retrying, "
        "done, dead)",
        labels=["queue", "status"],
    )
    attempts = GaugeMetricFamily(
        "lufy_job_attempts",
        "Attempts the ledger's jobs took, per queue and status; attempts minus jobs is the "
        "number of failed attempts that were retried",
        labels=["queue", "status"],
    )
    seen = {(queue, status) for queue, status, _, _ in jobs}
    for queue in QUEUES:
        for status in ("pending", "running", "retrying", "done", "dead"):
            if (queue, status) not in seen:
                jobs.append((queue, status, 0, 0))
    for queue, status, n, tries in sorted(jobs):
        tracked.add_metric([queue, status], n)
        attempts.add_metric([queue, status], tries)
    return [attempts, tracked]


async def render_metrics(container: Sources) -> tuple[bytes, str]:
    """The Prometheus text exposition: process counters plus state read at most
    `SCRAPE_CACHE_SECONDS` ago (one round of queries per window, however often it is asked)."""
    up, state_families = await scrape_cache(container).get()
    try:
        pool_families = _pool_families(container)
    except Exception:  # a closed pool during shutdown
        pool_families = []
    up_family = GaugeMetricFamily(
        "lufy_up", "Whether a dependency answered this scrape (1) or not (0)", labels=["component"]
    )
    for component in ("database", "redis"):
        up_family.add_metric([component], up.get(component, 0))

    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_Snapshot([up_family, *pool_families, *state_families]))
    return _process_metrics() + generate_latest(scrape), CONTENT_TYPE_LATEST


# How long the state read from PostgreSQL and Redis answers scrapes. Prometheus scrapes every
# 15 s or so; anything faster is someone hammering the endpoint, and must not cost queries.
SCRAPE_CACHE_SECONDS = 5.0


class ScrapeCache:
    """The state part of a scrape, read by one caller at a time and reused for `ttl` seconds."""

    def __init__(self, container: Sources, *, ttl: float = SCRAPE_CACHE_SECONDS) -> None:
        self._container = container
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._value: tuple[dict[str, int], list[Metric]] | None = None
        self._at = 0.0
        self.reads = 0

    def _fresh(self) -> bool:
        return self._value is not None and time.monotonic() - self._at < self._ttl

    async def get(self) -> tuple[dict[str, int], list[Metric]]:
        if self._fresh():
            assert self._value is not None
            return self._value
        async with self._lock:
            if not self._fresh():
                self.reads += 1
                up: dict[str, int] = {}
                db_families, redis_families = await asyncio.gather(
                    _bounded("database", up, lambda: _database_families(self._container)),
                    _bounded("redis", up, lambda: _redis_families(self._container)),
                )
                self._value = (up, [*db_families, *redis_families])
                self._at = time.monotonic()
            assert self._value is not None
            return self._value


_CACHES: Attached[ScrapeCache] = Attached(ScrapeCache)


def scrape_cache(container: Sources) -> ScrapeCache:
    """The container's scrape cache (one per container)."""
    return _CACHES.of(container)


def _process_metrics() -> bytes:
    if MULTIPROC_DIR:
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=MULTIPROC_DIR)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
    return generate_latest(REGISTRY)
