"""The analytics services of a container, created on first use (no edit of bootstrap.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lufy.analytics.ingest import Ingestor

if TYPE_CHECKING:
    from lufy.analytics.dashboard import Dashboard
    from lufy.bootstrap import Container

__all__ = ["dashboard", "ingestor"]


def ingestor(container: Container) -> Ingestor:
    found = container.services.get("analytics.ingestor")
    if not isinstance(found, Ingestor):
        found = Ingestor(
            container.db, container.store, sample_rate=container.settings.ANALYTICS_SAMPLE_RATE
        )
        container.services["analytics.ingestor"] = found
    return found


def dashboard(container: Container) -> Dashboard:
    from lufy.analytics.dashboard import Dashboard
    from lufy.readdb import read_database

    found = container.services.get("analytics.dashboard")
    if not isinstance(found, Dashboard):
        # Dashboard reads may be served by the read replica (lufy.readdb).
        found = Dashboard(read_database(container))
        container.services["analytics.dashboard"] = found
    return found
