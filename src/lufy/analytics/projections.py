"""Async projections of analytics events: playback sessions and 15-minute rollups.

A session's numbers depend on all of its events, which may arrive late and in any order, so the
projection keeps each session's state and, for every batch, adds to the rollups the difference
between the session's contribution after and before the batch. A late `playback.started` that
moves a session's start to an earlier bucket thus takes it out of the old bucket and into the
new one. State is order-independent where it matters (start = earliest start event, listened_ms
= max, completed/skipped = any), so live processing and a rebuild agree.

Only a *verified* session is a stream or counts a listener (CONTRACT.md section 4): one
appended by `lufy events import`, or one whose events carry the id of a stream grant
(`catalog.stream_authorized`, kept in `stream_grants`) issued for its track, to its listener
(the same signed-in user, or an anonymous grant for an anonymous listener), claimed by no
other session (one grant, one play: the first session to present it, in log order, claims it),
and issued at least `listened_ms` before each event's arrival (`recorded_at`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from lufy.analytics.classify import listener_key
from lufy.analytics.events import PLAYBACK_TYPES, AnalyticsEvent
from lufy.analytics.listeners import BitmapChanges
from lufy.catalog.events import StreamAuthorized
from lufy.eventstore.envelope import RecordedEvent
from lufy.projections.base import Projection
from lufy.sqlfiles import load_queries

__all__ = ["GRANT_SESSIONS", "PROJECTIONS", "AnalyticsProjection", "SessionState", "bucket_of"]

_Q = load_queries("lufy.analytics", "projections.sql")
STREAM_MS = 30_000
# How many playback sessions one stream grant verifies: one play per grant (a player asks for a
# new grant, `GET /api/music/tracks/{id}/stream`, for every play).
GRANT_SESSIONS = 1
_GRANT_TYPE = "catalog.stream_authorized"
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
    # The first grant id the session's events carried, whether any event came from a signed-in
    # listener or from `lufy events import`, and the latest moment a grant may have been issued
    # for every event's listened_ms to fit in the time between the grant and its arrival.
    grant_id: uuid.UUID | None = None
    signed_in: bool = False
    imported: bool = False
    grant_deadline: datetime | None = None
    verified: bool = False

    @property
    def started_at(self) -> datetime:
        return self.start_event_at or self.first_event_at

    def is_stream(self) -> bool:
        return self.verified and self.listened_ms >= STREAM_MS

    def contribution(self) -> tuple[_Key, list[float]]:
        w = self.weight
        return (
            (self.track_id, bucket_of(self.started_at), self.artist_id),
            [
                w if self.is_stream() else 0.0,
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
    deadline = recorded.recorded_at - timedelta(milliseconds=event.listened_ms or 0)
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
            grant_id=event.grant_id,
            signed_in=event.listener_id is not None,
            imported=event.imported,
            grant_deadline=deadline,
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
        grant_id=state.grant_id or event.grant_id,
        signed_in=state.signed_in or event.listener_id is not None,
        imported=state.imported or event.imported,
        grant_deadline=deadline
        if state.grant_deadline is None
        else min(state.grant_deadline, deadline),
    )


def _columns(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


class AnalyticsProjection(Projection):
    """Sessions, per-track and per-artist 15-minute rollups, and likes/follows one by one."""

    name = "analytics"
    # 2: sessions are verified by stream grants (`stream_grants`, `verified`).
    # 3: listener bitmaps (`listener_ids`, `listener_bitmaps`).
    # 4: days to refresh (`analytics_dirty_days`).
    # 5: session counters per block (`session_blocks`): the rebuild fixes what an old projector
    #    wrote after `lufy migrate` filled the table.
    version = 5
    handles = PLAYBACK_TYPES | frozenset(_ENGAGEMENT) | {_GRANT_TYPE}
    tables = (
        "playback_sessions",
        "track_rollup_15m",
        "artist_rollup_15m",
        "engagement_events",
        "stream_grants",
        "listener_ids",
        "listener_bitmaps",
        "analytics_dirty_days",
        # Session counters per block (lufy/analytics/counters.py, kept by BitmapChanges).
        "session_blocks",
    )

    def __init__(self) -> None:
        self._hmac_key: bytes | None = None

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        deltas: dict[_Key, list[float]] = defaultdict(lambda: [0.0] * _WIDTH)
        artist_follows: dict[tuple[uuid.UUID, datetime], float] = defaultdict(float)
        await self._grants(conn, [e for e in events if e.type == _GRANT_TYPE])
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
        days = {key[1].astimezone(UTC).date() for key in deltas}
        days |= {key[1].astimezone(UTC).date() for key in artist_follows}
        if days:
            await conn.execute(_Q.mark_days, {"days": sorted(days)})

    async def _grants(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        """Keep every grant with a keyed hash of its listener (never the user id itself)."""
        rows: list[tuple[Any, ...]] = []
        secret: bytes | None = None
        for recorded in events:
            event = recorded.data
            if not isinstance(event, StreamAuthorized) or event.grant_id is None:
                continue
            # Grants carry the key (privacy); older ones, before `lufy migrate` sealed the log,
            # the user id it is computed from.
            key = event.listener_key
            if key is None and event.listener_id is not None:
                if secret is None:
                    secret = await self._secret(conn)
                key = listener_key(secret, f"u:{event.listener_id}")
            rows.append((event.grant_id, event.track_id, key, recorded.occurred_at))
        if rows:
            await conn.execute(
                _Q.insert_grants,
                _columns(rows, ("grant_id", "track_id", "listener_key", "granted_at")),
            )

    async def _secret(self, conn: AsyncConnection[Any]) -> bytes:
        # The database's listener-key secret never changes, so reading it keeps apply
        # deterministic; cached per process.
        if self._hmac_key is None:
            cur = await conn.execute(_Q.hmac_key)
            row = await cur.fetchone()
            if row is None:
                raise RuntimeError("analytics secret missing: run `lufy migrate`")
            self._hmac_key = bytes(row[0])
        return self._hmac_key

    async def _verify(
        self,
        conn: AsyncConnection[Any],
        after: dict[str, SessionState],
        claim_order: dict[str, int],
    ) -> dict[str, SessionState]:
        """`after` with `verified` decided; grants claimed by sessions in log order."""
        wanted = sorted(
            {str(s.grant_id) for s in after.values() if s.grant_id is not None and not s.imported}
        )
        grants: dict[str, list[Any]] = {}
        if wanted:
            cur = await conn.execute(_Q.lock_grants, {"ids": wanted})
            grants = {str(r[0]): list(r[1:]) for r in await cur.fetchall()}
        claimed: set[str] = set()
        out: dict[str, SessionState] = {}
        big = len(claim_order) + 1
        for session_id in sorted(after, key=lambda sid: (claim_order.get(sid, big), sid)):
            s = after[session_id]
            verified = s.imported
            grant = grants.get(str(s.grant_id)) if not verified else None
            if grant is not None:
                track_id, key, granted_at, sessions = grant
                same_listener = key == s.listener_key if key is not None else not s.signed_in
                if track_id == s.track_id and same_listener:
                    if session_id not in sessions and len(sessions) < GRANT_SESSIONS:
                        sessions.append(session_id)
                        claimed.add(str(s.grant_id))
                    verified = session_id in sessions and (
                        s.grant_deadline is not None and granted_at <= s.grant_deadline
                    )
            out[session_id] = replace(s, verified=verified)
        if claimed:
            async with conn.cursor() as cur:
                await cur.executemany(
                    _Q.claim_grant,
                    [{"grant_id": g, "sessions": grants[g][3]} for g in sorted(claimed)],
                )
        return out

    async def _sessions(
        self,
        conn: AsyncConnection[Any],
        events: Sequence[RecordedEvent],
        deltas: dict[_Key, list[float]],
    ) -> None:
        if not events:
            return
        by_session: dict[str, list[RecordedEvent]] = defaultdict(list)
        claim_order: dict[str, int] = {}
        for index, recorded in enumerate(events):
            event = recorded.data
            assert isinstance(event, AnalyticsEvent)
            by_session[event.session_id].append(recorded)
            if event.grant_id is not None:
                claim_order.setdefault(event.session_id, index)
        cur = await conn.execute(_Q.lock_sessions, {"ids": sorted(by_session)})
        before: dict[str, SessionState] = {
            row[0]: SessionState(*row[1:]) for row in await cur.fetchall()
        }
        folded: dict[str, SessionState] = {}
        for session_id, recorded_events in by_session.items():
            state: SessionState | None = before.get(session_id)
            for recorded in recorded_events:
                state = _fold(state, recorded)
            if state is not None and state != before.get(session_id):
                folded[session_id] = state
        after: dict[str, SessionState] = {}
        bitmaps = BitmapChanges()
        for session_id, state in (await self._verify(conn, folded, claim_order)).items():
            old = before.get(session_id)
            if old == state:
                continue
            after[session_id] = state
            bitmaps.session(old, state)
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
            (session_id, *(getattr(s, name) for name in _SESSION_FIELDS))
            for session_id, s in sorted(after.items())
        ]
        await conn.execute(_Q.upsert_sessions, _columns(rows, ("session_id", *_SESSION_FIELDS)))
        await bitmaps.apply(conn)


_SESSION_FIELDS = tuple(f.name for f in fields(SessionState))


PROJECTIONS: list[Projection] = [AnalyticsProjection()]
