"""The fold of a range's playback events into sessions (projections.sql `batch_sessions`).

The rules that depend on the order of a session's events: a new session's events before the
first naming both track and artist are ignored, and that event decides its track, artist and
listener; text fields keep the first non-empty value in log order (`batch_firsts`); a session
seen before folds onto its stored row. Each case below is checked against the values a fold
event by event gives, and the whole log against rebuilds that cut it into ranges of one event
(every session then folded from its stored row, one event at a time) and of everything at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lufy.analytics.events import PlaybackCompleted, PlaybackProgress, PlaybackStarted
from lufy.analytics.projections import AnalyticsProjection
from lufy.eventstore import NewEvent
from lufy.projections.rebuild import rebuild
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track, issue_grant

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def append(db, store, events: list[tuple[Any, datetime]]) -> None:
    async with db.transaction(role="system") as conn:
        await store.append_bulk(
            conn,
            [
                NewEvent(event=e, occurred_at=when, stream_type="analytics", stream_id=e.session_id)
                for e, when in events
            ],
        )


async def sessions(db) -> dict[str, dict[str, Any]]:
    async with db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT session_id, track_id, listener_key, start_event_at, first_event_at, "
            "listened_ms, completed, source, country, device, imported FROM playback_sessions"
        )
        names = [c.name for c in cur.description or ()]
        return {r[0]: dict(zip(names, r, strict=True)) for r in await cur.fetchall()}


KINDS = {"started": PlaybackStarted, "progress": PlaybackProgress, "completed": PlaybackCompleted}


def event(
    kind: str, session: str, minute: int, key: str, track: Any, ms: int, **text: str
) -> tuple[Any, datetime]:
    """A playback event of `session` at `minute` (after T0) from listener `key`; with a
    `track` (a pair: track, artist) it names both, as an imported event."""
    named = {"track_id": track[0], "artist_id": track[1], "imported": True} if track else {}
    fields = {"session_id": session, "listener_key": key, "listened_ms": ms, **named, **text}
    return KINDS[kind](**fields), at(minute)


async def test_sessions_folded_in_one_pass_equal_the_fold_event_by_event(
    db, store, admin_conn, settings
) -> None:
    artist = await insert_artist(admin_conn)
    a = (await insert_track(admin_conn, artist), artist)
    b = (await insert_track(admin_conn, artist), artist)
    events = [
        # Events before the first naming track and artist are ignored: it starts at minute 2.
        event("progress", "lead", 0, "k1", None, 90_000, source="radio", country="BR"),
        event("started", "lead", 2, "k1", a, 0, source="search"),
        event("progress", "lead", 3, "k1", a, 40_000),
        # Its events disagree on track and listener: the first naming both decides.
        event("started", "switch", 5, "k2", b, 0),
        event("progress", "switch", 6, "k3", a, 35_000),
        # Text fields: the first non-empty value in log order.
        event("started", "mixed", 8, "k4", a, 0, source="", country="US", device="tv"),
        event("progress", "mixed", 9, "k4", a, 31_000, source="album", country="SE"),
        event("completed", "mixed", 10, "k4", a, 60_000, source="playlist"),
        # Nothing to settle.
        event("started", "plain", 12, "k5", b, 0, source="search", country="IN", device="mobile"),
        event("completed", "plain", 13, "k5", b, 50_000, source="search", country="IN"),
        # Never names a track: no session.
        event("progress", "orphan", 14, "k6", None, 50_000),
    ]
    await append(db, store, events)
    projector = LocalProjector(db, store)
    await projector.run()
    # A session seen before: the next range folds onto its stored row.
    await append(
        db,
        store,
        [
            event("progress", "plain", 15, "k5", a, 70_000, source="radio"),
            event("progress", "lead", 16, "k1", None, 80_000, device="desktop"),
        ],
    )
    await projector.run()

    got = await sessions(db)
    assert sorted(got) == ["lead", "mixed", "plain", "switch"]
    lead = got["lead"]
    assert (lead["track_id"], lead["start_event_at"], lead["first_event_at"]) == (
        a[0],
        at(2),
        at(2),
    )
    assert (lead["listened_ms"], lead["source"], lead["country"]) == (80_000, "search", None)
    assert lead["device"] == "desktop"
    switch = got["switch"]
    assert (switch["track_id"], switch["listener_key"], switch["listened_ms"]) == (
        b[0],
        "k2",
        35_000,
    )
    mixed = got["mixed"]
    assert (mixed["source"], mixed["country"], mixed["device"]) == ("album", "US", "tv")
    assert (mixed["listened_ms"], mixed["completed"]) == (60_000, True)
    plain = got["plain"]
    assert (plain["track_id"], plain["source"], plain["country"], plain["device"]) == (
        b[0],
        "search",
        "IN",
        "mobile",
    )
    assert (plain["listened_ms"], plain["completed"], plain["first_event_at"]) == (
        70_000,
        True,
        at(12),
    )

    # The same log cut into ranges of one event, then taken whole: the same rows.
    for step in (1, 1000):
        result = await rebuild(
            settings.DATABASE_URL, AnalyticsProjection(), batch_size=step, compare=True
        )
        assert result.swapped
        assert result.differences["playback_sessions"] == (0, 0), step
        assert result.differences["track_rollup_15m"] == (0, 0), step
        # (Bitmaps hold dense ids, given in another order when the log is cut otherwise.)
        assert result.differences["session_blocks"] == (0, 0), step
        assert await sessions(db) == got


async def test_a_new_sessions_ignored_events_still_date_its_claim_of_a_grant(
    db, store, admin_conn
) -> None:
    """Within one range, a new session's first event carrying a grant dates its claim even when
    the fold ignores that event (it names no track): that session claims the grant before a
    session that presented it later in the log. (The fold of such a range runs twice, the second
    time without the ignored events: the claim must survive.)"""
    artist = await insert_artist(admin_conn)
    track = await insert_track(admin_conn, artist)
    grant = await issue_grant(db, store, track)

    def progress(session: str, minute: int, *, named: bool) -> tuple[Any, datetime]:
        names = {"track_id": track, "artist_id": artist} if named else {}
        fields = {"session_id": session, "listener_key": "k", "listened_ms": 1_000}
        return PlaybackProgress(**fields, grant_id=grant, **names), at(minute)

    await append(
        db,
        store,
        [
            progress("early", 0, named=False),
            progress("other", 1, named=True),
            progress("early", 2, named=True),
        ],
    )
    await LocalProjector(db, store).run()
    async with db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT session_id, verified, start_event_at, first_event_at FROM playback_sessions"
        )
        got = {r[0]: r[1:] for r in await cur.fetchall()}
    assert got == {"early": (True, None, at(2)), "other": (False, None, at(1))}
