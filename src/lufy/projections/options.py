"""What the projector is given: its tuning (`ProjectorOptions`) and, from the entry point's
container, its settings and event store (`ProjectorResources`). `lufy.projections.runner`
re-exports both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lufy.eventstore.postgres import EventStore
from lufy.settings import Settings

__all__ = ["ProjectorOptions", "ProjectorResources"]


@dataclass
class ProjectorOptions:
    batch_size: int = 1000
    poll_interval: float = 1.0
    # Waits before each retry of a failing batch (then of the failing event alone).
    retry_delays: tuple[float, ...] = (0.2, 1.0, 3.0)
    # A failed projection: how often to look for a skip, and to try its event again.
    failed_check_interval: float = 1.0
    failed_retry_interval: float = 60.0
    # A follower tries to take the lead this often: takeover within about this long.
    lead_retry_interval: float = 1.0
    maintenance: bool = True
    sweep_interval: float = 15.0
    sweep_grace: float = 30.0
    refresh_interval: float = 300.0
    # How often the sweep of uploads never completed within 24 h is enqueued (0: never).
    upload_sweep_interval: float = 3600.0
    rebuild_batch_size: int | None = None  # None: rebuild()'s defaults


class ProjectorResources(Protocol):
    """What `run_projector` takes from the entry point's container (`bootstrap.Container`
    has these; the projector layer may not import the composition root, so it names them)."""

    settings: Settings
    store: EventStore

    async def stop(self) -> None: ...
