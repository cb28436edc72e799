"""/metrics and /readyz cannot be read by strangers or turned into a flood of database queries."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from lufy.bootstrap import Container, bootstrap
from lufy.observability import ScrapeCache, scrape_cache
from lufy.settings import Settings
from lufy.web.app import create_app
from lufy.web.health import readiness_probe
from lufy.web.metrics_port import serve_metrics

TOKEN = "a-long-enough-metrics-token-0123"


@pytest.fixture
async def started(settings: Settings) -> AsyncIterator[Container]:
    c = bootstrap(settings)
    await c.start()
    yield c
    await c.stop()


def client_for(container: Container, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(container), client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def with_settings(settings: Settings, **update: Any) -> Container:
    c = bootstrap(settings.model_copy(update=update))
    await c.start()
    return c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_remote_caller_cannot_read_metrics_when_no_token_or_port_is_configured(
    started: Container,
) -> None:
    async with client_for(started, "203.0.113.9") as client:
        response = await client.get("/metrics")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "METRICS_TOKEN" in response.json()["detail"]
    assert "lufy_up" not in response.text


async def test_a_loopback_caller_reads_metrics_when_no_token_or_port_is_configured(
    started: Container,
) -> None:
    async with client_for(started, "127.0.0.1") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "lufy_up" in response.text


async def test_a_forged_forwarded_for_loopback_header_does_not_open_metrics(
    started: Container,
) -> None:
    async with client_for(started, "203.0.113.9") as client:
        response = await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert response.status_code == 403


async def test_a_caller_without_the_bearer_token_or_with_a_wrong_one_cannot_read_metrics(
    settings: Settings,
) -> None:
    container = await with_settings(settings, METRICS_TOKEN=TOKEN)
    try:
        async with client_for(container, "127.0.0.1") as client:
            missing = await client.get("/metrics")
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            basic = await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
            right = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        await container.stop()
    # With a token configured even loopback callers need it.
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert right.status_code == 200
    assert "lufy_up" in right.text


async def test_with_a_metrics_port_the_public_port_serves_no_metrics_and_the_port_does(
    settings: Settings,
) -> None:
    port = free_port()
    container = await with_settings(settings, METRICS_PORT=port, METRICS_TOKEN=TOKEN)
    server = await serve_metrics(container, host="127.0.0.1", port=port)
    try:
        async with client_for(container, "127.0.0.1") as client:
            public = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as direct:
            without = await direct.get("/metrics")
            other = await direct.get("/api/auth/session")
            scraped = await direct.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        server.close()
        await server.wait_closed()
        await container.stop()
    assert public.status_code == 404
    assert without.status_code == 401
    assert other.status_code == 404
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "lufy_up" in scraped.text


async def test_a_flood_of_scrapes_reads_postgres_and_redis_once_per_cache_window(
    started: Container,
) -> None:
    async with client_for(started, "127.0.0.1") as client:
        answers = await asyncio.gather(*(client.get("/metrics") for _ in range(50)))
    assert all(a.status_code == 200 for a in answers)
    cache = scrape_cache(started)
    assert isinstance(cache, ScrapeCache)
    assert cache.reads == 1


async def test_a_cached_scrape_still_counts_requests_made_since(started: Container) -> None:
    async with client_for(started, "127.0.0.1") as client:
        await client.get("/metrics")
        for _ in range(3):
            await client.get("/healthz")
        text = (await client.get("/metrics")).text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("lufy_http_requests_total{") and 'route="/healthz"' in row
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3


async def test_a_flood_of_readyz_costs_one_probe_not_one_query_per_request(
    started: Container,
) -> None:
    async with client_for(started, "203.0.113.9") as client:
        answers = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
    assert {a.status_code for a in answers} == {200}
    assert readiness_probe(started).probes == 1


async def test_readyz_answers_from_its_cached_probe_until_the_probe_expires(
    started: Container, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    readiness_probe(started)._ttl = 3600.0  # a loaded machine must not expire it mid-test
    async with client_for(started, "127.0.0.1") as client:
        first = await client.get("/readyz")
        await admin_conn.execute(
            "DELETE FROM lufy.schema_migrations WHERE filename = '0001_event_log.sql'"
        )
        cached = await client.get("/readyz")
        readiness_probe(started).expire()  # the probe's window has passed
        fresh = await client.get("/readyz")
    assert first.status_code == 200
    assert cached.status_code == 200
    assert fresh.status_code == 503
    assert "0001_event_log.sql" in fresh.json()["migrations"]
