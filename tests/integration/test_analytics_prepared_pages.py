"""A rebuild types each page's events ahead, on its reader's connection, while the previous page
is applied (`AnalyticsProjection.prepare_range`, sql/0960_analytics_prepared_pages.sql); each
page's apply takes its typed rows. The rebuilt model equals the live one, nothing typed ahead is
left behind, and what an interrupted rebuild left typed ahead is never applied by the next one.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg import AsyncConnection

from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.analytics.projections import _Q, AnalyticsProjection, _page_name
from lufy.eventstore.envelope import Checkpoint
from lufy.projections.context import LIVE_PATH, SHADOW_PATH, enter_system_transaction
from lufy.projections.ranged import LogRange
from lufy.projections.rebuild import rebuild
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track
from tests.integration.test_analytics_listener_bitmaps import event

PAGE = 100
# The tables whose rows do not depend on how the log was cut into batches (listener ids are
# handed out per batch, so the bitmaps' ids differ; days to refresh count batches; the minutes
# of realtime are the last day's).
SAME_ROWS = (
    "playback_sessions",
    "track_rollup_15m",
    "artist_rollup_15m",
    "engagement_events",
    "stream_grants",
    "session_blocks",
)
LEFT = "SELECT (SELECT count(*) FROM lufy.analytics_prepared_pages), " + (
    "(SELECT count(*) FROM lufy.analytics_prepared_events)"
)
# The page after a checkpoint: its last handled event.
PAGE_END = """
SELECT transaction_id, global_position FROM lufy.events
WHERE (transaction_id, global_position) > (%(tx)s::text::xid8, %(pos)s)
  AND type = ANY(%(types)s)
ORDER BY transaction_id, global_position OFFSET %(offset)s LIMIT 1
"""


class _Interrupted(Exception):
    pass


def _stop_after_two_pages(done: int, total: int) -> None:
    if done >= 2 * PAGE:
        raise _Interrupted


class CountingProjection(AnalyticsProjection):
    """The analytics projection, counting the ranges typed ahead and those applied from them."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[LogRange] = []

    async def prepare_range(self, conn: AsyncConnection[Any], log: LogRange) -> None:
        self.prepared.append(log)
        await super().prepare_range(conn, log)


async def seeded(db, store, admin_conn) -> int:
    """About 900 imported playback events (300 sessions), projected live; returns how many."""
    rng = random.Random(960)
    artist = await insert_artist(admin_conn)
    tracks = [await insert_track(admin_conn, artist) for _ in range(2)]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    events = []
    for n in range(300):
        listener, track = rng.randrange(120), tracks[n % 2]
        start = now - timedelta(hours=rng.randrange(1, 40), seconds=rng.randrange(3600))
        for kind, at, ms in (
            ("playback.started", start, 0),
            ("playback.progress", start + timedelta(seconds=20), rng.choice([10_000, 40_000])),
            ("playback.completed", start + timedelta(seconds=60), 60_000),
        ):
            if kind != "playback.completed" or rng.random() < 0.7:
                events.append(event(kind, f"s-{n}", listener, track, at, ms))
    rng.shuffle(events)  # late starts and out-of-order events across pages
    await Ingestor(db, store, sample_rate=1.0, clock=lambda: now).ingest(
        events, IngestContext(historical=True), event_type=ImportedEvent
    )
    await LocalProjector(db, store, batch=250).run()
    return len(events)


async def test_a_rebuild_applies_each_page_from_its_events_typed_ahead(
    db, store, admin_conn, settings
) -> None:
    total = await seeded(db, store, admin_conn)
    projection = CountingProjection()

    result = await rebuild(
        settings.DATABASE_URL, projection, store=store, batch_size=PAGE, compare=True
    )

    assert result.swapped
    assert result.events_applied == total
    # Every page was typed ahead, once, and the rebuilt tables equal the live ones.
    assert len(projection.prepared) == -(-total // PAGE)
    assert len({(r.after, r.upto) for r in projection.prepared}) == len(projection.prepared)
    assert {t: result.differences[t] for t in SAME_ROWS} == dict.fromkeys(SAME_ROWS, (0, 0))
    cur = await admin_conn.execute(LEFT)
    assert await cur.fetchone() == (0, 0)  # each page's apply took its rows


async def test_what_an_interrupted_rebuild_typed_ahead_is_discarded_not_applied(
    db, store, admin_conn, app_conn, settings
) -> None:
    await seeded(db, store, admin_conn)

    with pytest.raises(_Interrupted):
        await rebuild(
            settings.DATABASE_URL,
            AnalyticsProjection(),
            store=store,
            batch_size=PAGE,
            progress=_stop_after_two_pages,
        )
    cur = await admin_conn.execute(
        "SELECT transaction_id, global_position FROM lufy.projection_rebuilds "
        "WHERE name = 'analytics'"
    )
    row = await cur.fetchone()
    assert row is not None
    after = Checkpoint(int(row[0]), int(row[1]))
    # The next page typed ahead, as the interrupted rebuild's reader may have left it, but
    # wrong: were it applied, every session in it would listen 1000 s longer.
    cur = await admin_conn.execute(
        PAGE_END,
        {
            "tx": after.transaction_id,
            "pos": after.global_position,
            "types": sorted(AnalyticsProjection.handles),
            "offset": PAGE - 1,
        },
    )
    end = await cur.fetchone()
    assert end is not None
    async with app_conn.transaction():
        await enter_system_transaction(app_conn, SHADOW_PATH)
        projection = AnalyticsProjection()
        await projection.discard_prepared(app_conn)  # what the reader got to, if anything
        await projection.prepare_range(
            app_conn, LogRange.between(after, Checkpoint(int(end[0]), int(end[1])))
        )
    cur = await admin_conn.execute(
        "UPDATE lufy.analytics_prepared_events SET listened_ms = listened_ms + 1000000"
    )
    assert cur.rowcount == PAGE

    result = await rebuild(
        settings.DATABASE_URL, AnalyticsProjection(), store=store, batch_size=PAGE, compare=True
    )

    assert result.resumed
    assert result.swapped
    assert {t: result.differences[t] for t in SAME_ROWS} == dict.fromkeys(SAME_ROWS, (0, 0))
    cur = await admin_conn.execute(LEFT)
    assert await cur.fetchone() == (0, 0)


LAST = "SELECT transaction_id, global_position FROM lufy.events ORDER BY 1 DESC, 2 DESC LIMIT 1"
# Events naming no track or artist before a session's first that does: a new session starts at
# the latter (what came before is ignored), a stored one takes them all.
EARLY = """
INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data)
SELECT gen_random_uuid(), 'playback', v.sid, 'playback.progress',
       jsonb_build_object('session_id', v.sid, 'listened_ms', v.ms, 'source', v.source)
           || CASE WHEN v.named THEN jsonb_build_object('track_id', t.track_id,
                                                        'artist_id', t.artist_id,
                                                        'listener_key', 'k-early')
                   ELSE '{}' END
FROM (VALUES (1, 'early-new', 90000, 'radio', false), (2, 'early-new', 5000, 'search', true),
             (3, 's-0', 95000, 'album', false), (4, 's-0', 1000, '', true),
             (5, 'never-named', 70000, 'radio', false)) AS v(k, sid, ms, source, named)
CROSS JOIN (SELECT track_id, artist_id FROM lufy.playback_sessions LIMIT 1) t
ORDER BY v.k
"""
FOLDED = "SELECT * FROM analytics_batch_folded ORDER BY session_id"
DROP_WORK = "DROP TABLE pg_temp.analytics_batch, pg_temp.analytics_batch_folded"


async def test_sessions_folded_ahead_in_parts_equal_the_fold_of_the_page(
    db, store, admin_conn, app_conn
) -> None:
    await seeded(db, store, admin_conn)
    cur = await admin_conn.execute(LAST)
    before = await cur.fetchone()
    await admin_conn.execute(EARLY)
    cur = await admin_conn.execute(LAST)
    last = await cur.fetchone()
    assert before is not None
    assert last is not None
    log = LogRange.between(
        Checkpoint(int(before[0]), int(before[1])), Checkpoint(int(last[0]), int(last[1]))
    )
    projection = AnalyticsProjection()
    params = log.params(projection)
    page = {"page": _page_name(log)}
    async with app_conn.transaction(force_rollback=True):
        await enter_system_transaction(app_conn, LIVE_PATH)
        await app_conn.execute(_Q.batch_events, params)
        await app_conn.execute(_Q.batch_folded)
        cur = await app_conn.execute(FOLDED)
        folded = await cur.fetchall()
        await app_conn.execute(DROP_WORK)
        await projection.prepare_range(app_conn, log)
        cur = await app_conn.execute(_Q.take_prepared, page)
        assert await cur.fetchone() == (5,)
        await app_conn.execute(_Q.batch_events_prepared, page)
        await app_conn.execute(_Q.batch_folded_prepared, page)
        cur = await app_conn.execute(FOLDED)
        assert await cur.fetchall() == folded
    # (session_id, claim_n, is_new, from_n, start, first, listened_ms, ..., source, ...)
    by_session = {row[0]: row for row in folded}
    assert set(by_session) == {"early-new", "s-0"}
    assert by_session["early-new"][2:4] == (True, 2)  # starts at its first named event
    assert by_session["early-new"][6] == 5000
    assert by_session["s-0"][2:4] == (False, 0)  # stored: takes every event
    assert by_session["s-0"][6] == 95000
