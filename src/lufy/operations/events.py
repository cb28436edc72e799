"""Events an operator causes. Stream: `operations` / the projection or subsystem name."""

from __future__ import annotations

from lufy.eventstore.envelope import Event

__all__ = ["EVENTS", "ProjectionEventSkipped", "ProjectionRebuilt"]


class ProjectionEventSkipped(Event, frozen=True, tag="operations.projection_event_skipped"):
    projection: str
    global_position: int
    reason: str = ""


class ProjectionRebuilt(Event, frozen=True, tag="operations.projection_rebuilt"):
    projection: str
    version: int
    events_applied: int


EVENTS = (ProjectionEventSkipped, ProjectionRebuilt)
