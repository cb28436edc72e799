"""Process counters: HTTP requests, analytics ingestion, rate-limit decisions, job outcomes.

They are incremented where the thing happens, through the small `record_*` helpers below, and
summed across API processes by Prometheus. With several API processes behind one port set
`PROMETHEUS_MULTIPROC_DIR` (see docs/operations.md) so any process answers for all of them.
Workers count job outcomes into one Redis hash (`JobMetricsMiddleware`) because they serve no
HTTP of their own; the scrape reads it (`lufy.observability.scrape`).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import dramatiq
from litestar.enums import ScopeType
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lufy.logs import get_logger

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ANALYTICS_EVENTS",
    "JOB_METRICS_KEY",
    "MULTIPROC_DIR",
    "QUEUES",
    "RATE_LIMIT_DECISIONS",
    "REGISTRY",
    "REQUESTS",
    "REQUESTS_IN_FLIGHT",
    "REQUEST_LATENCY",
    "JobMetricsMiddleware",
    "metrics_middleware",
    "record_ingest",
    "record_job_outcome",
    "record_rate_limit_fail_closed",
    "record_rate_limit_fail_open",
    "record_rate_limited",
]

_log = get_logger("lufy.observability")

REGISTRY = CollectorRegistry(auto_describe=True)
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

# The queues of CONTRACT §2; their depth is read from dramatiq's Redis keys at scrape time.
QUEUES = ("analytics-refresh", "email-send", "media-processing")
# Redis hash of job outcome counters, field "<queue>|<actor>|<outcome>" -> count.
JOB_METRICS_KEY = "lufy:metrics:jobs"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "lufy_http_requests",
    "HTTP requests by method, route template and response status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "lufy_http_request_duration_seconds",
    "HTTP request latency (until the handler returned its response) by route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=_LATENCY_BUCKETS,
)
REQUESTS_IN_FLIGHT = Gauge(
    "lufy_http_requests_in_flight",
    "HTTP requests being handled right now",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
ANALYTICS_EVENTS = Counter(
    "lufy_analytics_events",
    "Analytics events received on POST /api/analytics/events by outcome: accepted, "
    "duplicate, sampled_out, rejected, bot (dropped unread: a crawler's User-Agent)",
    ["outcome"],
    registry=REGISTRY,
)
ANALYTICS_BATCHES = Counter(
    "lufy_analytics_batches",
    "Analytics ingestion requests (batches) handled",
    registry=REGISTRY,
)
RATE_LIMIT_DECISIONS = Counter(
    "lufy_rate_limit_decisions",
    "Rate-limit decisions that were not a plain allow, by policy and outcome: rejected (429), "
    "fail_open (Redis unreachable, request allowed), fail_closed (Redis unreachable, refused)",
    ["policy", "outcome"],
    registry=REGISTRY,
)

for _outcome in ("accepted", "duplicate", "sampled_out", "rejected"):
    ANALYTICS_EVENTS.labels(_outcome)


# -- helpers other modules call ------------------------------------------------------------------


def record_ingest(
    *, accepted: int = 0, duplicates: int = 0, sampled_out: int = 0, rejected: int = 0
) -> None:
    """Count one ingestion batch's outcome (call once per batch, after it committed)."""
    ANALYTICS_BATCHES.inc()
    for outcome, n in (
        ("accepted", accepted),
        ("duplicate", duplicates),
        ("sampled_out", sampled_out),
        ("rejected", rejected),
    ):
        if n:
            ANALYTICS_EVENTS.labels(outcome).inc(n)


def record_rate_limited(policy: str) -> None:
    """A request was refused with 429 under `policy` (e.g. "user", "guest", "sign-in")."""
    RATE_LIMIT_DECISIONS.labels(policy, "rejected").inc()


def record_rate_limit_fail_open(policy: str) -> None:
    """Redis was unreachable and the request was let through (ordinary routes)."""
    RATE_LIMIT_DECISIONS.labels(policy, "fail_open").inc()


def record_rate_limit_fail_closed(policy: str) -> None:
    """Redis was unreachable and the request was refused (auth routes)."""
    RATE_LIMIT_DECISIONS.labels(policy, "fail_closed").inc()


def record_job_outcome(client: Any, queue: str, actor: str, outcome: str) -> None:
    """Count a job outcome in Redis (sync client), where any process's scrape can read it.

    Never raises: a metrics write must not fail or retry a job."""
    try:
        client.hincrby(JOB_METRICS_KEY, f"{queue}|{actor}|{outcome}", 1)
    except Exception as exc:  # Redis down: the job itself matters more than its counter
        _log.debug("job metric not recorded", error=type(exc).__name__)


class JobMetricsMiddleware(dramatiq.Middleware):
    """dramatiq middleware counting enqueued / succeeded / failed / skipped / dead jobs per queue
    and actor. Add it to the broker (`broker.add_middleware(JobMetricsMiddleware())`) in the
    projector and the workers; it is a no-op on brokers without a Redis client (StubBroker)."""

    @staticmethod
    def _count(broker: Any, message: Any, outcome: str) -> None:
        client = getattr(broker, "client", None)
        if client is not None:
            record_job_outcome(client, _canonical(message.queue_name), message.actor_name, outcome)

    def after_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        self._count(broker, message, "enqueued")

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        self._count(broker, message, "failed" if exception is not None else "succeeded")

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self._count(broker, message, "skipped")

    def after_nack(self, broker: Any, message: Any) -> None:
        self._count(broker, message, "dead")


def _canonical(queue: str) -> str:
    # dramatiq's delay queues are "<queue>.DQ"; count them under the queue itself.
    return queue[:-3] if queue.endswith(".DQ") else queue


# -- the HTTP middleware ------------------------------------------------------------------------


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Count requests and time them per route *template* (never the raw path: bounded labels)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        method = scope.get("method", "GET")

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        REQUESTS_IN_FLIGHT.inc()
        try:
            await app(scope, receive, send_and_watch)
        finally:
            REQUESTS_IN_FLIGHT.dec()
            route = scope.get("path_template") or "<unmatched>"
            labels = (method, route, str(status))
            REQUESTS.labels(*labels).inc()
            REQUEST_LATENCY.labels(*labels).observe(time.perf_counter() - started)

    return middleware
