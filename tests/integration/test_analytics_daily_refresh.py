"""analytics.track_daily / artist_daily: a refresh recomputes only the UTC days that changed."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.analytics.projections import AnalyticsProjection
from lufy.analytics.refresh import refresh_views
from lufy.projections.rebuild import rebuild
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track


def session(track: uuid.UUID, day: date, n: int, listener: str) -> list[dict]:
    start = datetime.combine(day, time(12, n % 60), UTC)
    sid = f"s-{uuid.uuid4().hex[:10]}"
    return [
        {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "occurred_at": (start + timedelta(seconds=ms // 1000)).isoformat(),
            "session_id": sid,
            "anonymous_id": listener,
            "track_id": str(track),
            "listened_ms": ms,
        }
        for kind, ms in (("playback.started", 0), ("playback.progress", 40_000))
    ]


async def daily(admin_conn) -> dict[tuple[date, str], tuple[float, float]]:
    cur = await admin_conn.execute(
        "SELECT day, 'track', streams, listeners FROM analytics.track_daily "
        "UNION ALL SELECT day, 'artist', streams, listeners FROM analytics.artist_daily"
    )
    return {(r[0], r[1]): (r[2], r[3]) for r in await cur.fetchall()}


async def test_a_refresh_recomputes_only_the_days_that_changed_and_a_rebuild_marks_them_all(
    db, store, admin_conn, settings
) -> None:
    track = await insert_track(admin_conn, await insert_artist(admin_conn))
    ingestor = Ingestor(db, store, sample_rate=1.0)
    projector = LocalProjector(db, store)
    today = datetime.now(UTC).date()
    old_day, recent_day = today - timedelta(days=40), today - timedelta(days=20)

    async def send(events: list[dict]) -> None:
        result = await ingestor.ingest(
            events, IngestContext(historical=True), event_type=ImportedEvent
        )
        assert result.accepted == len(events)
        await projector.run()

    await send(
        [
            *session(track, old_day, 1, "a"),
            *session(track, old_day, 2, "a"),
            *session(track, recent_day, 3, "b"),
        ]
    )
    await refresh_views(db)
    assert await daily(admin_conn) == {
        (old_day, "track"): (2, 1),
        (old_day, "artist"): (2, 1),
        (recent_day, "track"): (1, 1),
        (recent_day, "artist"): (1, 1),
    }
    cur = await admin_conn.execute("SELECT count(*) FROM lufy.analytics_dirty_days")
    assert (await cur.fetchone())[0] == 0

    # Tamper with the old day's row: a refresh that recomputed it would put it right.
    await admin_conn.execute(
        "UPDATE lufy.analytics_track_daily SET streams = 999 WHERE day = %s", [old_day]
    )
    await send([*session(track, recent_day, 4, "c"), *session(track, recent_day, 5, "b")])
    refreshed = dict(await refresh_views(db))
    assert set(refreshed) == {"track_daily", "artist_daily"}
    got = await daily(admin_conn)
    assert got[(recent_day, "track")] == (3, 2)
    assert got[(recent_day, "artist")] == (3, 2)
    assert got[(old_day, "track")] == (999, 1)  # not recomputed: it did not change

    # A rebuild of the projection marks every day it holds; the next refresh recomputes them.
    result = await rebuild(settings.DATABASE_URL, AnalyticsProjection(), batch_size=3)
    assert result.swapped
    await refresh_views(db)
    got = await daily(admin_conn)
    assert got[(old_day, "track")] == (2, 1)
    assert got[(recent_day, "track")] == (3, 2)
