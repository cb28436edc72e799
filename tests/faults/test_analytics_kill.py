"""The analytics projection killed with SIGKILL in the middle of a batch.

Its batch is one transaction (work tables, sessions, grants, rollups, bitmaps, checkpoint), so
the kill loses that batch whole and the next projector applies it again from the checkpoint.
The log holds what makes the projection order-sensitive: sessions whose first events come
without `playback.started` (a later transaction brings it, moving the session to an earlier
quarter-hour and UTC day), sessions that cross 30 s in a later transaction, grants claimed by
the first of several sessions, likes and follows. Afterwards every read model equals what a
rebuild from the log produces, and the independent counts of the generated sessions.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

from lufy.analytics.projections import AnalyticsProjection
from lufy.projections.rebuild import rebuild
from tests.faults.harness import Stack, wait_for
from tests.faults.test_kill import pending

SESSIONS = 9000

# One transaction per phase. Session g starts at 5 s before a UTC midnight of one of the last
# 20 days (g % 3 = 0: its first progress, 10 s later, is on the next day) or mid-day.
PHASE_SQL = """
INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data, metadata, occurred_at)
SELECT gen_random_uuid(), 'analytics', 'k-' || g, e.type,
       jsonb_strip_nulls(jsonb_build_object(
           'session_id', 'k-' || g, 'listener_key', md5('listener' || g %% 2500),
           'track_id', %(track)s::uuid, 'artist_id', %(artist)s::uuid, 'listened_ms', e.ms,
           'source', 'playlist', 'country', 'SE', 'imported', g %% 5 <> 0,
           'grant_id', CASE WHEN g %% 5 = 0 THEN %(grant)s::text END)),
       '{"weight": 1.0}'::jsonb, e.at
FROM (SELECT g, date_trunc('day', now()) - (g %% 20) * interval '1 day'
                - CASE WHEN g %% 3 = 0 THEN interval '5 seconds' ELSE interval '11 hours' END
                AS started
      FROM generate_series(1, %(sessions)s) AS g) s
CROSS JOIN LATERAL (VALUES
    (1, 'playback.progress', s.started + interval '10 seconds', 20000),
    (2, 'playback.started', s.started, 0),
    (3, 'playback.progress', s.started + interval '45 seconds',
        CASE WHEN s.g %% 3 <> 1 THEN 45000 ELSE 25000 END),
    (3, 'track.liked', s.started + interval '50 seconds', NULL)
) AS e(phase, type, at, ms)
WHERE e.phase = %(phase)s AND (e.type <> 'track.liked' OR s.g %% 7 = 0)
ORDER BY s.g
"""

# What the read models must hold, whatever happened: the same rows as after a rebuild.
SNAPSHOT = {
    "sessions": "SELECT * FROM lufy.playback_sessions ORDER BY session_id",
    "rollups": "SELECT track_id, bucket, streams, listen_ms, starts, completions, skips, likes "
    "FROM lufy.track_rollup_15m WHERE streams <> 0 OR starts <> 0 OR likes <> 0 "
    "ORDER BY track_id, bucket",
    "bitmaps": "SELECT scope, owner, dim, key, level, bucket, weight, listeners, streams "
    "FROM lufy.listener_bitmaps ORDER BY 1, 2, 3, 4, 5, 6, 7",
    "engagement": "SELECT * FROM lufy.engagement_events ORDER BY event_id",
    "grants": "SELECT * FROM lufy.stream_grants ORDER BY grant_id",
    "minutes": "SELECT scope, owner, minute, artist_id, streams FROM lufy.session_minutes "
    "WHERE streams <> 0 ORDER BY 1, 2, 3",
}


def snapshot(deployment: Stack) -> dict[str, list[Any]]:
    with deployment.admin() as conn:
        conn.execute("SELECT set_config('app.current_role', 'system', false)")
        return {name: conn.execute(query).fetchall() for name, query in SNAPSHOT.items()}


def in_a_batch(deployment: Stack) -> bool:
    """Whether the projector's analytics connection is inside a batch that has written."""
    with deployment.admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'lufy-projector%'"
            " AND backend_xid IS NOT NULL AND query LIKE '%analytics%'"
        ).fetchone()
    return bool(row and row[0])


def test_an_analytics_projector_killed_mid_batch_ends_equal_to_a_rebuild(
    deployment: Stack,
) -> None:
    track, artist, grant = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with deployment.admin() as conn:
        conn.execute(
            "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published) "
            "VALUES (%s, %s, 'Kill Switch', 'ready', 180000, true)",
            [track, artist],
        )
        # One grant for the track, presented by every fifth (non-imported) session: only the
        # first of them, in log order, is verified.
        conn.execute(
            "INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data, occurred_at) "
            "VALUES (gen_random_uuid(), 'catalog_stream', %s, 'catalog.stream_authorized', "
            "jsonb_build_object('track_id', %s::text, 'grant_id', %s::text, 'expires_at', "
            "now() + interval '1 day', 'delivery', 'local'), now() - interval '30 days')",
            [str(track), track, grant],
        )
        for phase in (1, 2, 3):
            conn.execute(
                PHASE_SQL,
                {
                    "track": track,
                    "artist": artist,
                    "grant": str(grant),
                    "sessions": SESSIONS,
                    "phase": phase,
                },
            )
    projector = deployment.projector()
    wait_for(lambda: in_a_batch(deployment), 60, "the projector to be inside a batch")
    projector.signal(signal.SIGKILL)
    projector.proc.wait(timeout=10)
    assert pending(deployment, "analytics") > 0, "the kill came after the last batch"
    deployment.projector("projector-2")
    wait_for(lambda: pending(deployment, "analytics") == 0, 120, "the projector to catch up")
    live = snapshot(deployment)

    streams = sum(1 for g in range(1, SESSIONS + 1) if g % 5 != 0 and g % 3 != 1)
    with deployment.admin() as conn:
        conn.execute("SELECT set_config('app.current_role', 'system', false)")
        counts = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_stream), "
            "count(*) FILTER (WHERE verified AND NOT imported), "
            "count(*) FILTER (WHERE started_at = date_trunc('minute', started_at) "
            "                 - interval '5 seconds' + interval '1 minute'), "
            "(SELECT sum(streams) FROM lufy.track_rollup_15m), "
            "(SELECT sum(starts) FROM lufy.track_rollup_15m) FROM lufy.playback_sessions"
        ).fetchone()
    # Every session once; the late starts moved sessions to 5 s before midnight; one grant,
    # one verified session (the first to present it, session k-5, a stream).
    assert counts == (SESSIONS, streams + 1, 1, SESSIONS // 3, streams + 1, SESSIONS)

    url = deployment.pg.url(deployment.dbname, "lufy_app", "lufy_app")
    result = asyncio.run(rebuild(url, AnalyticsProjection(), batch_size=4000))
    assert result.swapped
    rebuilt = snapshot(deployment)
    for name in SNAPSHOT:
        assert live[name] == rebuilt[name], name
