"""`python -m lufy.healthcheck` (the projector's and workers' container health) and compose.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from lufy.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def run_check(settings: Settings, name: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "LUFY_ENV": "test",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "lufy.healthcheck", name],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_projector_with_its_database_and_redis_reachable_is_healthy(settings: Settings) -> None:
    done = run_check(settings, "projector")
    assert done.returncode == 0, done.stderr


def test_a_worker_that_cannot_reach_redis_is_unhealthy_with_one_line_saying_so(
    settings: Settings,
) -> None:
    done = run_check(settings, "worker", REDIS_URL="redis://127.0.0.1:1/0")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("unhealthy: redis")


def test_a_projector_that_cannot_reach_postgres_is_unhealthy(settings: Settings) -> None:
    done = run_check(
        settings, "projector", DATABASE_URL="postgresql://lufy_app:x@127.0.0.1:1/nowhere"
    )
    assert done.returncode == 1
    assert done.stderr.startswith("unhealthy: database")


def test_every_long_running_compose_service_has_a_healthcheck_and_api_workers_share_metrics() -> (
    None
):
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    one_shot = {name for name, s in services.items() if s.get("restart") == "no"}
    assert {"migrate", "minio-bucket", "seed"} <= one_shot
    for name, service in services.items():
        if name not in one_shot:
            assert "healthcheck" in service, f"{name} has no healthcheck"
    api = services["api"]
    assert "--workers" in api["command"]
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert any(t.startswith(api["environment"]["PROMETHEUS_MULTIPROC_DIR"]) for t in api["tmpfs"])
    assert "127.0.0.1:6379:6379" in services["redis"]["ports"]
    assert services["seed"]["profiles"] == ["seed"]
