"""A page of the log filtered by type walks the log in order and stops at its LIMIT
(sql/0990_events_type_statistics.sql): with the statistics of `(type || '')` the planner knows
how much of the log the types asked for are, and never sorts the rest of the log for a page."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.reading import page_params, page_query
from lufy.sqlfiles import load_queries

pytestmark = pytest.mark.asyncio

_Q = load_queries("lufy.eventstore")
# One transaction per 2,000 events, as bulk imports write them: a few distinct transaction ids.
_FILL = """
INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data)
SELECT gen_random_uuid(), 'playback', 's-' || (g / 3), t.name, '{}'::jsonb
FROM generate_series(1, 2000) g,
     LATERAL (SELECT (ARRAY['playback.started', 'playback.progress', 'playback.completed',
                            'catalog.track_published'])[1 + g % 4] AS name) t
"""


async def _plan(conn: psycopg.AsyncConnection[Any], types: list[str]) -> str:
    params = page_params(Checkpoint(0, 0), 1000, types)
    params.update(to_tx=None, to_pos=None, barrier=None)
    query = b"EXPLAIN " + page_query(_Q.read_page_text)
    rows = await (await conn.execute(query, params)).fetchall()
    return "\n".join(r[0] for r in rows)


async def test_a_page_of_the_common_types_is_read_in_log_order_not_sorted(
    admin_conn: psycopg.AsyncConnection[Any],
) -> None:
    await admin_conn.set_autocommit(True)
    for _ in range(40):  # 80,000 events in 40 transactions
        await admin_conn.execute(_FILL)
    await admin_conn.execute("ANALYZE lufy.events")

    plan = await _plan(admin_conn, ["playback.started", "playback.progress", "playback.completed"])
    assert "events_transaction_order" in plan, plan
    assert "Sort" not in plan, plan

    # Without the expression's statistics the planner guesses 0.5 percent of the log, and a
    # page of 1,000 looks like the whole log: it sorts (this is what the migration changed).
    await admin_conn.execute("DROP STATISTICS lufy.events_type_filter")
    await admin_conn.execute("ANALYZE lufy.events")
    assert "Sort" in await _plan(admin_conn, ["playback.started", "playback.progress"])
