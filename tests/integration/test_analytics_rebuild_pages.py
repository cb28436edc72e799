"""A rebuild of the analytics projection types and folds each page's events ahead, on its
reading connection, into slots of sql/0950_analytics_rebuild_pages.sql and
sql/0951_analytics_rebuild_folds.sql (`stage_range`): the slots have the columns of
`typed_events` and `session_fold`, and hold nothing once the rebuild is over. (That a staged
rebuild gives the live rows is checked with every rebuild of the analytics tests, e.g.
test_analytics_session_fold.py, whose rebuild of one event per page cycles the slots.)"""

from __future__ import annotations

from typing import Any

from lufy.analytics.events import PlaybackCompleted, PlaybackProgress, PlaybackStarted
from lufy.analytics.projections import _BATCH_EVENTS, _Q, AnalyticsProjection
from lufy.eventstore import Checkpoint, NewEvent
from lufy.projections.ranged import LogRange
from lufy.projections.rebuild import rebuild
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track

COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attcollation::regcollation::text
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


async def test_the_slots_have_the_columns_of_the_typed_events(app_conn) -> None:
    p = AnalyticsProjection()
    log = LogRange.between(Checkpoint.START, Checkpoint(1, 1))
    async with app_conn.transaction():
        await app_conn.execute(_BATCH_EVENTS, log.params(p))
        cur = await app_conn.execute(COLUMNS, ["pg_temp.analytics_batch"])
        typed = await cur.fetchall()
        await app_conn.execute(f"CREATE TEMP TABLE folded AS {_Q.session_fold} WITH NO DATA")
        cur = await app_conn.execute(COLUMNS, ["pg_temp.folded"])
        folded = await cur.fetchall()
        for slot in range(p.rebuild_stage_slots):
            cur = await app_conn.execute(COLUMNS, [f"lufy.analytics_rebuild_page_{slot}"])
            assert await cur.fetchall() == typed, slot
            cur = await app_conn.execute(COLUMNS, [f"lufy.analytics_rebuild_fold_{slot}"])
            assert await cur.fetchall() == folded, slot


async def test_a_rebuild_with_pages_folded_ahead_gives_the_live_rows_and_empty_slots(
    db, store, admin_conn, settings
) -> None:
    """Pages of 3 events (the first applied whole, the others folded ahead), among them one
    whose new session's first event names no track: that page is folded again (inline) once the
    event is set aside, as live processing does."""
    artist = await insert_artist(admin_conn)
    track = await insert_track(admin_conn, artist)
    events: list[Any] = []
    for i in range(7):
        named: dict[str, Any] = {
            "session_id": f"s{i}",
            "listener_key": f"k{i % 3}",
            "track_id": track,
            "artist_id": artist,
            "imported": True,
        }
        events += [
            PlaybackStarted(**named, listened_ms=0),
            PlaybackCompleted(**named, listened_ms=40_000),
        ]
    lead = {"session_id": "lead", "listener_key": "k9", "imported": True}
    named = {**lead, "track_id": track, "artist_id": artist}
    events[3:3] = [  # the second page
        PlaybackProgress(**lead, listened_ms=90_000, source="radio"),
        PlaybackStarted(**named, listened_ms=0, source="search"),
        PlaybackCompleted(**named, listened_ms=40_000),
    ]
    async with db.transaction(role="system") as conn:
        await store.append_bulk(
            conn, [NewEvent(event=e, stream_type="analytics", stream_id="s") for e in events]
        )
    await LocalProjector(db, store).run()
    result = await rebuild(settings.DATABASE_URL, AnalyticsProjection(), batch_size=3, compare=True)
    assert result.swapped
    assert result.events_applied == len(events)
    assert result.differences["playback_sessions"] == (0, 0)
    assert result.differences["track_rollup_15m"] == (0, 0)
    cur = await admin_conn.execute(
        "SELECT source, listened_ms, first_event_at = start_event_at FROM lufy.playback_sessions "
        "WHERE session_id = 'lead'"
    )
    assert await cur.fetchone() == ("search", 40_000, True)
    for slot in range(AnalyticsProjection.rebuild_stage_slots):
        for table in ("page", "fold"):
            cur = await admin_conn.execute(
                f"SELECT count(*) FROM lufy.analytics_rebuild_{table}_{slot}"
            )
            assert (await cur.fetchone())[0] == 0
