"""/metrics, /healthz and /readyz against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.redis import RedisBroker
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from lufy.bootstrap import bootstrap
from lufy.eventstore import NO_STREAM, EventStore, NewEvent
from lufy.observability import (
    JobMetricsMiddleware,
    record_ingest,
    record_rate_limit_fail_open,
    record_rate_limited,
)
from lufy.operations.events import ProjectionRebuilt
from lufy.settings import Settings
from lufy.web.app import create_app

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


METRICS_TOKEN = "a-metrics-token-for-these-tests"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(bootstrap(settings.model_copy(update={"METRICS_TOKEN": METRICS_TOKEN})))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def scrape(client: AsyncTestClient[Any]) -> str:
    # The test client's peer is not a loopback address: scrape with the token.
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-type"].count("charset") == 1
    return response.text


async def test_requests_are_counted_and_timed_per_route_template_and_status(
    client: AsyncTestClient[Any],
) -> None:
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get("/healthz")).status_code == 200
    after = await scrape(client)
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(after, "lufy_http_requests_total", **labels) - value(
        before, "lufy_http_requests_total", **labels
    ) == pytest.approx(3)
    assert value(after, "lufy_http_request_duration_seconds_count", **labels) - value(
        before, "lufy_http_request_duration_seconds_count", **labels
    ) == pytest.approx(3)


async def test_the_pool_and_both_dependencies_are_reported_up(
    client: AsyncTestClient[Any],
) -> None:
    text = await scrape(client)
    assert value(text, "lufy_up", component="database") == 1
    assert value(text, "lufy_up", component="redis") == 1
    assert value(text, "lufy_db_pool_limit", bound="max") >= 1
    assert value(text, "lufy_db_pool_connections", state="open") >= 1


async def test_ingestion_and_rate_limit_helpers_show_up_in_the_scrape(
    client: AsyncTestClient[Any],
) -> None:
    before = await scrape(client)
    record_ingest(accepted=7, duplicates=2, sampled_out=1, rejected=3)
    record_rate_limited("guest")
    record_rate_limit_fail_open("user")
    after = await scrape(client)
    for outcome, n in (("accepted", 7), ("duplicate", 2), ("sampled_out", 1), ("rejected", 3)):
        delta = value(after, "lufy_analytics_events_total", outcome=outcome) - value(
            before, "lufy_analytics_events_total", outcome=outcome
        )
        assert delta == n
    assert (
        value(after, "lufy_rate_limit_decisions_total", policy="guest", outcome="rejected")
        - value(before, "lufy_rate_limit_decisions_total", policy="guest", outcome="rejected")
        == 1
    )
    assert (
        value(after, "lufy_rate_limit_decisions_total", policy="user", outcome="fail_open")
        - value(before, "lufy_rate_limit_decisions_total", policy="user", outcome="fail_open")
        == 1
    )


async def test_projection_lag_is_the_committed_events_past_the_checkpoint(
    client: AsyncTestClient[Any], app_conn: psycopg.AsyncConnection[Any], store: EventStore
) -> None:
    await app_conn.execute(
        "INSERT INTO lufy.checkpoints (name) VALUES ('lag_probe') ON CONFLICT DO NOTHING"
    )
    for n in range(3):
        event = ProjectionRebuilt(projection=f"p{n}", version=1, events_applied=0)
        await store.append(
            app_conn, "operations", f"p{n}", [NewEvent(event=event)], expected=NO_STREAM
        )
    # The gap-free barrier (xmin of the cluster's snapshot) also waits for other test
    # processes' transactions on the shared cluster: scrape until it has passed our events.
    for _ in range(300):
        text = await scrape(client)
        if value(text, "lufy_projection_lag_events", projection="lag_probe") == 3:
            break
        await asyncio.sleep(0.1)
    assert value(text, "lufy_projection_lag_events", projection="lag_probe") == 3
    assert value(text, "lufy_projection_lag_seconds", projection="lag_probe") > 0
    assert value(text, "lufy_projection_checkpoint_position", projection="lag_probe") == 0
    assert value(text, "lufy_event_log_head_position") >= 3


async def test_queue_depth_and_job_outcomes_are_read_from_redis(
    client: AsyncTestClient[Any], settings: Settings
) -> None:
    broker = RedisBroker(url=settings.REDIS_URL)
    broker.add_middleware(JobMetricsMiddleware())

    @dramatiq.actor(broker=broker, queue_name="email-send", actor_name=f"probe_{uuid.uuid4().hex}")
    def probe(n: int) -> None:
        return None

    probe.send(1)
    probe.send(2)
    text = await scrape(client)
    assert value(text, "lufy_job_queue_depth", queue="email-send", state="ready") == 2
    assert value(text, "lufy_job_queue_depth", queue="media-processing", state="ready") == 0
    assert (
        value(
            text, "lufy_jobs_total", queue="email-send", actor=probe.actor_name, outcome="enqueued"
        )
        == 2
    )
    broker.close()


async def test_a_scrape_still_answers_when_the_database_is_down(settings: Settings) -> None:
    down = settings.model_copy(
        update={
            "DATABASE_URL": "postgresql://lufy_app:lufy_app@127.0.0.1:1/nowhere",
            "METRICS_TOKEN": METRICS_TOKEN,
        }
    )
    app = create_app(bootstrap(down))
    async with AsyncTestClient(app=app) as client:
        text = await scrape(client)
        assert value(text, "lufy_up", component="database") == 0
        assert value(text, "lufy_up", component="redis") == 1
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"].startswith("error")


async def test_readyz_is_ready_when_everything_answers_and_migrations_are_current(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "database": "ok",
        "redis": "ok",
        "migrations": "ok",
        "ahead_of_build": [],
    }


async def test_readyz_is_not_ready_when_a_shipped_migration_was_not_applied(
    client: AsyncTestClient[Any], admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    await admin_conn.execute(
        "DELETE FROM lufy.schema_migrations WHERE filename = '0001_event_log.sql'"
    )
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert "0001_event_log.sql" in body["migrations"]
    assert "lufy migrate" in body["migrations"]


async def test_readyz_stays_ready_when_the_database_is_ahead_of_this_build_and_says_by_what(
    client: AsyncTestClient[Any], admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    await admin_conn.execute(
        "INSERT INTO lufy.schema_migrations (filename, checksum) VALUES ('9999_future.sql', 'x')"
    )
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["ahead_of_build"] == ["9999_future.sql"]


async def test_readyz_is_not_ready_when_a_shipped_migration_differs_from_the_applied_one(
    client: AsyncTestClient[Any], admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    await admin_conn.execute(
        "UPDATE lufy.schema_migrations SET checksum = 'edited' "
        "WHERE filename = '0001_event_log.sql'"
    )
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert "0001_event_log.sql differs" in response.json()["migrations"]


async def test_readyz_is_not_ready_when_redis_is_unreachable(settings: Settings) -> None:
    down = settings.model_copy(update={"REDIS_URL": "redis://127.0.0.1:1/0"})
    app = create_app(bootstrap(down))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["redis"].startswith("error")
        assert response.json()["database"] == "ok"


async def test_a_failed_projection_and_the_job_ledger_show_up_in_the_scrape(
    client: AsyncTestClient[Any], admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    await admin_conn.execute(
        "INSERT INTO lufy.checkpoints (name) VALUES ('broken_probe') ON CONFLICT DO NOTHING"
    )
    await admin_conn.execute(
        "INSERT INTO lufy.projection_state (name, state, error) "
        "VALUES ('broken_probe', 'failed', 'boom')"
    )
    await admin_conn.execute(
        "INSERT INTO lufy.jobs (actor, job_key, queue, status, attempts) VALUES "
        "('send_email', 'a', 'email-send', 'done', 1), "
        "('send_email', 'b', 'email-send', 'done', 3), "
        "('send_email', 'c', 'email-send', 'dead', 5), "
        "('process_upload', 'd', 'media-processing', 'pending', 0)"
    )
    text = await scrape(client)
    assert value(text, "lufy_projection_state", projection="broken_probe", state="failed") == 1
    assert value(text, "lufy_projection_state", projection="broken_probe", state="running") == 0
    assert value(text, "lufy_jobs_tracked", queue="email-send", status="done") == 2
    assert value(text, "lufy_jobs_tracked", queue="email-send", status="dead") == 1
    assert value(text, "lufy_job_attempts", queue="email-send", status="done") == 4
    assert value(text, "lufy_jobs_tracked", queue="media-processing", status="pending") == 1
    assert value(text, "lufy_jobs_tracked", queue="analytics-refresh", status="pending") == 0


async def test_the_grafana_dashboard_only_queries_metrics_lufy_exposes(
    client: AsyncTestClient[Any],
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\blufy_[a-z0-9_]+", expr)}
    exposed: set[str] = set()
    for family in text_string_to_metric_families(await scrape(client)):
        # A family is exposed even before it has samples (no projection has run yet, ...).
        exposed |= {family.name, f"{family.name}_total"}
        exposed |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
    assert used, "the dashboard queries nothing"
    assert used - exposed == set()


async def test_a_templated_route_is_counted_under_its_template_never_its_raw_path(
    client: AsyncTestClient[Any],
) -> None:
    for _ in range(2):
        response = await client.get(f"/api/music/tracks/{uuid.uuid4()}")
        assert response.status_code == 404
    text = await scrape(client)
    routes = {
        dict(labels)["route"]
        for name, labels in samples(text)
        if name == "lufy_http_requests_total"
    }
    assert "/api/music/tracks/{track_id}" in routes
    assert not any(route.count("-") >= 4 for route in routes), "a raw id leaked into a label"
    assert (
        value(
            text,
            "lufy_http_requests_total",
            method="GET",
            route="/api/music/tracks/{track_id}",
            status="404",
        )
        >= 2
    )
