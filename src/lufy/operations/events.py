"""Events an operator causes. Stream: `operations` / the projection or subsystem name."""

from __future__ import annotations

from lufy.eventstore.envelope import Event

__all__ = ["EVENTS", "PersonalDataSealed", "ProjectionEventSkipped", "ProjectionRebuilt"]


class ProjectionEventSkipped(Event, frozen=True, tag="operations.projection_event_skipped"):
    projection: str
    global_position: int
    reason: str = ""


class ProjectionRebuilt(Event, frozen=True, tag="operations.projection_rebuilt"):
    projection: str
    version: int
    events_applied: int


class PersonalDataSealed(Event, frozen=True, tag="operations.personal_data_sealed"):
    """`lufy migrate` sealed the personal fields of events written before privacy sealing:
    the one sanctioned rewrite of the log (ids, positions and order kept). Stream:
    operations/privacy_sealing."""

    events_sealed: int
    password_hashes_removed: int
    people: int
    first_position: int
    last_position: int
    # send_email jobs of the ledger whose address and name were in clear.
    jobs_sealed: int = 0


EVENTS = (ProjectionEventSkipped, ProjectionRebuilt, PersonalDataSealed)
