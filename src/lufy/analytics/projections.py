"""The analytics projection: playback sessions, 15-minute rollups, grants, engagement.

Set-based: each range of the log (a live batch, or a page of a rebuild) is applied with a few
statements (projections.sql) over work tables of that range, never event by event in Python:
1. the range's stream grants are kept (`stream_grants`, the listener as a keyed hash);
2. its playback events are folded per session (`analytics_batch_sessions`): start = earliest
   `playback.started`, else earliest event; listened_ms = max; completed/skipped = any;
   weight = max; source, country, device and grant = the first given, in log order;
3. merged with the stored sessions into each session's state before and after, where anything
   changed (`analytics_batch_changes`);
4. `verified` decided for the changed sessions, grants claimed in log order;
5. the sessions written, the listener bitmaps given every change (listeners.py: grouped per
   row in SQL, merged in pyroaring), the rollups and the counters per block (counters.py)
   given each changed session's contribution after minus before (so a late
   `playback.started` moves a session to its true bucket, and a session that crosses 30 s
   later becomes a stream where it started), likes and follows added, and the changed UTC days
   marked for the analyst tables' refresh.
State does not depend on how the log is cut into ranges, so live processing, a rebuild and
tests (which all call `apply_range`) reach the same rows.

Only a *verified* session is a stream or counts a listener (CONTRACT.md section 4): one
appended by `lufy events import`, or one whose events carry the id of a stream grant
(`catalog.stream_authorized`, kept in `stream_grants`) issued for its track, to its listener
(the same signed-in user, or an anonymous grant for an anonymous listener), claimed by no
other session (one grant, one play: the first session to present it, in log order, claims it),
and issued at least `listened_ms` before each event's arrival (`recorded_at`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, AsyncCursor, sql

from lufy.analytics import counters, listeners, minutes
from lufy.analytics.classify import listener_key
from lufy.analytics.events import PLAYBACK_TYPES
from lufy.projections.base import Projection
from lufy.projections.ranged import LogRange, RangeProjection
from lufy.sqlfiles import load_queries

__all__ = ["GRANT_SESSIONS", "PROJECTIONS", "AnalyticsProjection", "SessionState", "bucket_of"]

_Q = load_queries("lufy.analytics", "projections.sql")
STREAM_MS = 30_000
# How many playback sessions one stream grant verifies: one play per grant (a player asks for a
# new grant, `GET /api/music/tracks/{id}/stream`, for every play).
GRANT_SESSIONS = 1
_GRANT_TYPE = "catalog.stream_authorized"
# The range's work table of typed events, or a rebuild's page typed ahead into a slot.
_BATCH_EVENTS = "CREATE TEMP TABLE analytics_batch ON COMMIT DROP AS\n" + _Q.typed_events
_STAGE_EVENTS = "INSERT INTO {slot}\n" + _Q.typed_events
_STAGE_FOLD = "INSERT INTO {fold}\n" + _Q.session_fold
# The sessions of a range folded inline, or from a rebuild's page folded ahead (`{fold}`).
_BATCH_SESSIONS = _Q.batch_sessions.replace("{fold}", "(\n" + _Q.session_fold + "\n)")
_ENGAGEMENT = frozenset({"track.liked", "track.unliked", "artist.followed", "artist.unfollowed"})


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


def _slot(slot: int) -> sql.Identifier:
    """The table of a slot of pages typed ahead (sql/0950_analytics_rebuild_pages.sql)."""
    return sql.Identifier("lufy", f"analytics_rebuild_page_{slot}")


def _fold(slot: int) -> sql.Identifier:
    """The table of a slot of pages folded ahead (sql/0951_analytics_rebuild_folds.sql)."""
    return sql.Identifier("lufy", f"analytics_rebuild_fold_{slot}")


def _columns(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


class AnalyticsProjection(RangeProjection):
    """Sessions, per-track and per-artist 15-minute rollups, and likes/follows one by one,
    applied a range of the log at a time with set-based statements (projections.sql).

    Live batches and a rebuild's pages go through `apply_range` alike; the rebuild reads its
    pages in log order (`by_positions = False`): which session claims a grant, and a session's
    first source, country, device and grant, depend on the order of events.
    """

    name = "analytics"
    # 2: sessions are verified by stream grants (`stream_grants`, `verified`).
    # 3: listener bitmaps (`listener_ids`, `listener_bitmaps`).
    # 4: days to refresh (`analytics_dirty_days`).
    # 5: session counters per block (`session_blocks`): the rebuild fixes what an old projector
    #    wrote after `lufy migrate` filled the table.
    version = 5
    handles = PLAYBACK_TYPES | _ENGAGEMENT | {_GRANT_TYPE}
    tables = (
        "playback_sessions",
        "track_rollup_15m",
        "artist_rollup_15m",
        "engagement_events",
        "stream_grants",
        "listener_ids",
        "listener_bitmaps",
        "analytics_dirty_days",
        # Session counters per block (lufy/analytics/counters.py).
        "session_blocks",
        # Streams per minute of the last day, for realtime (lufy/analytics/minutes.py).
        "session_minutes",
    )
    by_positions = False
    # Events per transaction of a rebuild: the work tables of a page stay small in memory, and
    # the listener bitmaps of a page are merged and written once.
    rebuild_step = 100_000
    # Read by the dashboard and analysts only: a rebuild builds them once it has caught up.
    # playback_sessions_listener_started is probed by `listeners.sql` for sides leaving a
    # bitmap row only, which a rebuild's pages rarely have (none over the 3M-event fixture):
    # the first page of a rebuild that has some builds it (listeners.py), and its upkeep was
    # about half of inserting a page's sessions (docs/benchmarks.md, "Rebuild: the listener
    # index deferred").
    rebuild_deferred_indexes = (
        "playback_sessions_listener_started",
        "playback_sessions_artist_started",
        "playback_sessions_started",
        "playback_sessions_track_started",
        "track_rollup_15m_artist_bucket",
        "track_rollup_15m_bucket",
        "track_rollup_15m_engagement",
        "artist_rollup_15m_bucket",
        "engagement_events_artist_time",
        "engagement_events_time",
        "listener_bitmaps_artist",
        "session_blocks_artist",
    )

    # A rebuild's pages are typed ahead (`stage_range`) in the slots of
    # sql/0950_analytics_rebuild_pages.sql.
    rebuild_stage_slots = 3

    def __init__(self) -> None:
        self._hmac_key: bytes | None = None

    async def apply_range(self, conn: AsyncConnection[Any], log: LogRange) -> None:
        if not log.by_checkpoints:
            raise ValueError("the analytics projection applies ranges in log order only")
        params = log.params(self)
        await self._grants(conn, params)
        if log.staged is None:
            await conn.execute(_BATCH_EVENTS, params)
            await conn.execute(_BATCH_SESSIONS)
        else:  # typed and folded ahead on a rebuild's reading connection (stage_range)
            await conn.execute(sql.SQL(_Q.staged_events).format(slot=_slot(log.staged)))
            await conn.execute(sql.SQL(_Q.batch_sessions).format(fold=_fold(log.staged)))
        mixed, refold = await self._fold_flags(conn)
        if refold:  # new sessions whose first events name no track or artist (rare)
            await conn.execute(_Q.set_aside_first_fold)
            await conn.execute(_Q.drop_ignored)
            await conn.execute(_BATCH_SESSIONS)  # (what is left of the range, inline)
            await conn.execute(_Q.restore_claims)
            await conn.execute(_Q.drop_first_fold)
            mixed, _ = await self._fold_flags(conn)
        if mixed:
            await conn.execute(_Q.batch_firsts)
        await conn.execute(_Q.batch_changes)
        await conn.execute(_Q.verify, {"grant_sessions": GRANT_SESSIONS})
        # The bitmaps' Python work (grouping the rows, merging the bitmaps) overlaps with the
        # statements that do not depend on it, queued in pipeline mode: PostgreSQL writes the
        # sessions while Python groups the rows, and the rollups and counters while it merges.
        engagement: list[AsyncCursor[Any]] = []

        async def write_sessions() -> None:
            await conn.execute(_Q.insert_sessions)
            await conn.execute(_Q.update_sessions)

        async def add_rollups() -> None:
            await conn.execute(_Q.batch_deltas)
            await conn.execute(_Q.add_track_rollup)
            await counters.add_batch(conn)
            await minutes.add_batch(conn)  # streams per minute (realtime), same changes
            engagement.append(await conn.execute(_Q.engagement))

        await listeners.apply_batch(conn, while_grouping=write_sessions, while_merging=add_rollups)
        follow_days = sorted({row[0] for row in await engagement[0].fetchall()})
        await conn.execute(_Q.mark_days, {"days": follow_days})
        await conn.execute(_Q.drop_work_tables)

    async def stage_range(self, conn: AsyncConnection[Any], log: LogRange, slot: int) -> None:
        """A rebuild's page typed ahead (`typed_events`) and folded (`session_fold`) into
        `slot` on its reading connection: about 40 % of applying a page, done on the other
        core meanwhile."""
        names = {"slot": _slot(slot), "fold": _fold(slot)}
        async with conn.transaction():
            await conn.execute(sql.SQL(_Q.clear_slot).format(**names))
            await conn.execute(
                sql.SQL(_STAGE_EVENTS).format(slot=names["slot"]), log.params(self), prepare=False
            )
            await conn.execute(sql.SQL(_Q.stage_fold).format(slot=names["slot"]))
            await conn.execute(sql.SQL(_STAGE_FOLD).format(fold=names["fold"]), prepare=False)
            await conn.execute(_Q.unstage_view)

    async def clear_stage(self, conn: AsyncConnection[Any]) -> None:
        for slot in range(self.rebuild_stage_slots):
            await conn.execute(sql.SQL(_Q.clear_slot).format(slot=_slot(slot), fold=_fold(slot)))

    async def _fold_flags(self, conn: AsyncConnection[Any]) -> tuple[bool, bool]:
        """Whether any folded session is `mixed` (batch_firsts), or `refold` (drop_ignored)."""
        cur = await conn.execute(_Q.any_mixed)
        row = await cur.fetchone()
        return (bool(row[0]), bool(row[1])) if row else (False, False)

    async def _grants(self, conn: AsyncConnection[Any], params: dict[str, Any]) -> None:
        """Keep every grant with a keyed hash of its listener (never the user id itself)."""
        cur = await conn.execute(_Q.batch_grants, params)
        found = await cur.fetchall()
        if not found:
            return
        secret: bytes | None = None
        rows: list[tuple[Any, ...]] = []
        for grant_id, track_id, listener_id, granted_at, key in found:
            if key is None and listener_id is not None:
                secret = secret or await self._secret(conn)
                key = listener_key(secret, f"u:{listener_id}")
            rows.append((grant_id, track_id, key, granted_at))
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


PROJECTIONS: list[Projection] = [AnalyticsProjection()]
