"""Events an operator causes. Stream: `operations` / the projection or subsystem name."""

from __future__ import annotations

from lufy.eventstore.envelope import Event

__all__ = [
    "EVENTS",
    "AnalyticsRawExpired",
    "DataKeysRewrapped",
    "PersonalDataSealed",
    "ProjectionEventSkipped",
    "ProjectionRebuilt",
]


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
    # Analytics events whose listener_id / anonymous_id were in clear, and stream grants whose
    # user id was replaced by its listener_key (positions: first and last of either).
    listener_events_sealed: int = 0
    grants_rekeyed: int = 0


class AnalyticsRawExpired(Event, frozen=True, tag="operations.analytics_raw_expired"):
    """Retention (`ANALYTICS_RAW_RETENTION_DAYS`) destroyed the month keys of these UTC months:
    the listener ids of their analytics events and stream grants no longer open; their
    aggregates (counted by listener_key) stay. Stream: operations/analytics_retention."""

    retention_days: int
    # Months (first days, YYYY-MM-DD) whose keys were destroyed in this run.
    months: list[str]
    # Every month before this one (the month holding the cutoff) has aged out.
    before: str


class DataKeysRewrapped(Event, frozen=True, tag="operations.data_keys_rewrapped"):
    """`lufy migrate` wrapped data keys by the current DATA_KEY_SECRET (a master key rotation,
    or keys of the per-database dev key). Stream: operations/data_keys."""

    rewrapped: int
    # Of those, keys that were wrapped by the per-database dev key.
    from_database: int = 0
    # Keys that opened with no configured secret and were left as they were.
    unopenable: int = 0


EVENTS = (
    ProjectionEventSkipped,
    ProjectionRebuilt,
    PersonalDataSealed,
    AnalyticsRawExpired,
    DataKeysRewrapped,
)
