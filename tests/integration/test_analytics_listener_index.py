"""A rebuild fills its shadow copy of playback_sessions without the listener index
(`AnalyticsProjection.rebuild_deferred_indexes`); the bitmaps' statement for sessions leaving a
row probes it, so the first range of a rebuild that has such sessions builds it first
(`ensure_listener_index` in listeners.sql). The live tables always have it."""

from __future__ import annotations

from typing import Any

from lufy.analytics.projections import AnalyticsProjection
from lufy.projections.context import LIVE_PATH, SHADOW_PATH
from lufy.sqlfiles import load_queries

_Q = load_queries("lufy.analytics", "listeners.sql")
INDEX = "playback_sessions_listener_started"

_DEFINITIONS = (
    "SELECT n.nspname, regexp_replace(pg_get_indexdef(c.oid), ' ON \\S+ ', ' ON t ') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = %s ORDER BY 1"
)


async def test_the_listener_index_is_built_on_the_shadow_copy_when_first_needed(
    app_conn: Any,
) -> None:
    assert INDEX in AnalyticsProjection.rebuild_deferred_indexes
    # As at a rebuild's start: the deferred indexes dropped from the shadow copy.
    await app_conn.execute(
        "SELECT lufy.shadow_indexes(ARRAY['playback_sessions'], false, ARRAY[%s])", [INDEX]
    )
    cur = await app_conn.execute(_DEFINITIONS, [INDEX])
    assert [row[0] for row in await cur.fetchall()] == ["lufy"]
    # A live range: nothing to do, and nothing done to the shadow copy.
    await app_conn.execute(f"SET search_path = {LIVE_PATH}")
    await app_conn.execute(_Q.ensure_listener_index)
    cur = await app_conn.execute(_DEFINITIONS, [INDEX])
    assert [row[0] for row in await cur.fetchall()] == ["lufy"]
    # A rebuild's range: the shadow copy gets the live index's definition, once.
    await app_conn.execute(f"SET search_path = {SHADOW_PATH}")
    for _ in range(2):
        await app_conn.execute(_Q.ensure_listener_index)
    cur = await app_conn.execute(_DEFINITIONS, [INDEX])
    rows = await cur.fetchall()
    assert [row[0] for row in rows] == ["lufy", "lufy_shadow"]
    assert rows[0][1] == rows[1][1]
