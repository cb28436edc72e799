"""Fault-test fixtures: a PostgreSQL cluster of our own (session-wide, restarted by the tests
that need it), a migrated template database in it, and per-test deployments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lufy.migrate import migrate
from tests.faults.harness import PgCluster, Stack, stack


@pytest.fixture(scope="session")
def fault_pg() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def fault_template(fault_pg: PgCluster) -> str:
    name = "lufy_fault_template"
    migrate(fault_pg.url(name), fault_pg.url(name, "lufy_app", "lufy_app"))
    return name


@pytest.fixture
def deployment(
    fault_pg: PgCluster, fault_template: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    if not fault_pg.is_up():  # a previous test failed while the cluster was down
        fault_pg.start()
    with stack(fault_pg, fault_template, tmp_path) as deployed:
        yield deployed
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(deployed.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
