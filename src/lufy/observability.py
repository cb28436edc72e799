"""Prometheus metrics shared by the API, projector and workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from lufy.bootstrap import Container

__all__ = ["REGISTRY", "REQUESTS", "REQUEST_LATENCY", "render_metrics"]

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "lufy_http_requests",
    "HTTP requests by route and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "lufy_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


async def render_metrics(container: Container) -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
