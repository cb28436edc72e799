"""Async projections of analytics events: playback sessions and 15-minute rollups.

A session's numbers depend on all of its events, which may arrive late and in any order, so the
projection keeps each session's state and, for every batch, adds to the rollups the difference
between the session's contribution after and before the batch. A late `playback.started` that
moves a session's start to an earlier bucket thus takes it out of the old bucket and into the
new one. State is order-independent where it matters (start = earliest start event, listened_ms
= max, completed/skipped = any), so live processing and a rebuild agree.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from lufy.analytics.events import PLAYBACK_TYPES, AnalyticsEvent
from lufy.eventstore.envelope import RecordedEvent
from lufy.projections.base import Projection
from lufy.sqlfiles import load_queries

__all__ = ["PROJECTIONS", "AnalyticsProjection", "SessionState", "bucket_of"]

_Q = load_queries("lufy.analytics", "projections.sql")
STREAM_MS = 30_000
_ENGAGEMENT = {
    "track.liked": ("like", 1.0),
    "track.unliked": ("like", -1.0),
    "artist.followed": ("follow", 1.0),
    "artist.unfollowed": ("follow", -1.0),
}
# streams, listen_ms, starts, completions, skips, likes, follows
_WIDTH = 7
_Key = tuple[uuid.UUID, datetime, uuid.UUID]


def bucket_of(moment: datetime) -> datetime:
    """The 15-minute UTC bucket containing `moment`."""
    utc = moment.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)


@dataclass(frozen=True)
class SessionState:
    track_id: uuid.UUID
    artist_id: uuid.UUID
    listener_key: str
    start_event_at: datetime | None
    first_event_at: datetime
    listened_ms: int = 0
    completed: bool = False
    skipped: bool = False
    source: str | None = None
    country: str | None = None
    device: str | None = None
    weight: float = 1.0

    @property
    def started_at(self) -> datetime:
        return self.start_event_at or self.first_event_at

    def contribution(self) -> tuple[_Key, list[float]]:
        w = self.weight
        return (
            (self.track_id, bucket_of(self.started_at), self.artist_id),
            [
                w if self.listened_ms >= STREAM_MS else 0.0,
                self.listened_ms * w,
                w,
                w if self.completed else 0.0,
                w if self.skipped else 0.0,
                0.0,
                0.0,
            ],
        )


def _fold(state: SessionState | None, recorded: RecordedEvent) -> SessionState | None:
    event = recorded.data
    assert isinstance(event, AnalyticsEvent)
    at = recorded.occurred_at
    weight = recorded.metadata.weight or 1.0
    is_start = recorded.type == "playback.started"
    if state is None:
        if event.track_id is None or event.artist_id is None:
            return None  # ingestion never lets these through; a hand-written event might
        return SessionState(
            track_id=event.track_id,
            artist_id=event.artist_id,
            listener_key=event.listener_key,
            start_event_at=at if is_start else None,
            first_event_at=at,
            listened_ms=event.listened_ms or 0,
            completed=recorded.type == "playback.completed",
            skipped=recorded.type == "playback.skipped",
            source=event.source,
            country=event.country,
            device=event.device,
            weight=weight,
        )
    start = state.start_event_at
    if is_start and (start is None or at < start):
        start = at
    return replace(
        state,
        start_event_at=start,
        first_event_at=min(state.first_event_at, at),
        listened_ms=max(state.listened_ms, event.listened_ms or 0),
        completed=state.completed or recorded.type == "playback.completed",
        skipped=state.skipped or recorded.type == "playback.skipped",
        source=state.source or event.source,
        country=state.country or event.country,
        device=state.device or event.device,
        weight=max(state.weight, weight),
    )


def _columns(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


class AnalyticsProjection(Projection):
    """Sessions, per-track and per-artist 15-minute rollups, and likes/follows one by one."""

    name = "analytics"
    version = 1
    handles = PLAYBACK_TYPES | frozenset(_ENGAGEMENT)
    tables = ("playback_sessions", "track_rollup_15m", "artist_rollup_15m", "engagement_events")

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        deltas: dict[_Key, list[float]] = defaultdict(lambda: [0.0] * _WIDTH)
        artist_follows: dict[tuple[uuid.UUID, datetime], float] = defaultdict(float)
        await self._sessions(conn, [e for e in events if e.type in PLAYBACK_TYPES], deltas)
        engagement: list[tuple[Any, ...]] = []
        for recorded in events:
            kind_sign = _ENGAGEMENT.get(recorded.type)
            event = recorded.data
            if kind_sign is None or not isinstance(event, AnalyticsEvent):
                continue
            if event.artist_id is None:
                continue
            kind, sign = kind_sign
            delta = sign * (recorded.metadata.weight or 1.0)
            bucket = bucket_of(recorded.occurred_at)
            engagement.append(
                (
                    recorded.event_id,
                    kind,
                    event.track_id,
                    event.artist_id,
                    recorded.occurred_at,
                    delta,
                )
            )
            if kind == "follow":
                artist_follows[(event.artist_id, bucket)] += delta
            if event.track_id is not None:
                deltas[(event.track_id, bucket, event.artist_id)][5 if kind == "like" else 6] += (
                    delta
                )
        if engagement:
            await conn.execute(
                _Q.insert_engagement,
                _columns(
                    engagement,
                    ("event_id", "kind", "track_id", "artist_id", "occurred_at", "delta"),
                ),
            )
        if deltas:
            rows = [(*key, *values) for key, values in sorted(deltas.items())]
            await conn.execute(
                _Q.add_track_rollup,
                _columns(
                    rows,
                    (
                        "track_id",
                        "bucket",
                        "artist_id",
                        "streams",
                        "listen_ms",
                        "starts",
                        "completions",
                        "skips",
                        "likes",
                        "follows",
                    ),
                ),
            )
        if artist_follows:
            rows = [(*key, value) for key, value in sorted(artist_follows.items())]
            await conn.execute(
                _Q.add_artist_rollup, _columns(rows, ("artist_id", "bucket", "follows"))
            )

    async def _sessions(
        self,
        conn: AsyncConnection[Any],
        events: Sequence[RecordedEvent],
        deltas: dict[_Key, list[float]],
    ) -> None:
        if not events:
            return
        by_session: dict[str, list[RecordedEvent]] = defaultdict(list)
        for recorded in events:
            event = recorded.data
            assert isinstance(event, AnalyticsEvent)
            by_session[event.session_id].append(recorded)
        cur = await conn.execute(_Q.lock_sessions, {"ids": sorted(by_session)})
        before: dict[str, SessionState] = {
            row[0]: SessionState(*row[1:]) for row in await cur.fetchall()
        }
        after: dict[str, SessionState] = {}
        for session_id, recorded_events in by_session.items():
            state: SessionState | None = before.get(session_id)
            for recorded in recorded_events:
                state = _fold(state, recorded)
            if state is None:
                continue
            old = before.get(session_id)
            if old == state:
                continue
            after[session_id] = state
            if old is not None:
                key, values = old.contribution()
                acc = deltas[key]
                for i, v in enumerate(values):
                    acc[i] -= v
            key, values = state.contribution()
            acc = deltas[key]
            for i, v in enumerate(values):
                acc[i] += v
        if not after:
            return
        rows = [
            (
                session_id,
                s.track_id,
                s.artist_id,
                s.listener_key,
                s.start_event_at,
                s.first_event_at,
                s.listened_ms,
                s.completed,
                s.skipped,
                s.source,
                s.country,
                s.device,
                s.weight,
            )
            for session_id, s in sorted(after.items())
        ]
        await conn.execute(
            _Q.upsert_sessions,
            _columns(
                rows,
                (
                    "session_id",
                    "track_id",
                    "artist_id",
                    "listener_key",
                    "start_event_at",
                    "first_event_at",
                    "listened_ms",
                    "completed",
                    "skipped",
                    "source",
                    "country",
                    "device",
                    "weight",
                ),
            ),
        )


PROJECTIONS: list[Projection] = [AnalyticsProjection()]
