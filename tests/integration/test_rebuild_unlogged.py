"""A rebuild fills its shadow copies UNLOGGED and without the indexes its projection defers,
then swaps in LOGGED tables with every index; a rebuild whose UNLOGGED copies were emptied by
crash recovery starts afresh instead of resuming on top of nothing
(sql/0940_rebuild_unlogged_shadow.sql)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from psycopg import AsyncConnection

from lufy.projections.ranged import LogRange
from lufy.projections.rebuild import rebuild

from ._projection_helpers import RangeCounter, counted, counted_fixture

INDEX_SQL = """
CREATE INDEX IF NOT EXISTS test_other_events ON lufy.test_other (events) WHERE events > 0;
CREATE INDEX IF NOT EXISTS test_other_events ON lufy_shadow.test_other (events) WHERE events > 0;
"""

SHADOW_SQL = """
SELECT c.relpersistence, to_regclass('lufy_shadow.test_other_events') IS NOT NULL
FROM pg_class c WHERE c.oid = 'lufy_shadow.test_other'::regclass
"""

LIVE_SQL = """
SELECT c.relpersistence, pg_get_indexdef(to_regclass('lufy.test_other_events'))
FROM pg_class c WHERE c.oid = 'lufy.test_other'::regclass
"""


class _Interrupted(Exception):
    pass


class DeferringCounter(RangeCounter):
    """RangeCounter deferring an index, noting the shadow copy's state at each range."""

    by_positions: ClassVar[bool] = False
    rebuild_deferred_indexes: ClassVar[tuple[str, ...]] = ("test_other_events",)
    seen: ClassVar[list[tuple[str, bool]]] = []

    async def apply_range(self, conn: AsyncConnection[Any], log: LogRange) -> None:
        cur = await conn.execute(SHADOW_SQL)
        row = await cur.fetchone()
        assert row is not None
        self.seen.append((row[0], row[1]))
        await super().apply_range(conn, log)


async def test_shadow_copies_are_filled_unlogged_and_swapped_in_logged_with_every_index(
    settings, app_conn, admin_conn
) -> None:
    store = await counted_fixture(settings, admin_conn, app_conn, INDEX_SQL)
    cur = await admin_conn.execute(LIVE_SQL)
    live_before = await cur.fetchone()
    assert live_before is not None
    assert live_before[0] == "p"
    DeferringCounter.seen.clear()

    result = await rebuild(settings.DATABASE_URL, DeferringCounter(), store=store, batch_size=50)

    assert result.swapped
    assert result.events_applied == 120
    assert DeferringCounter.seen
    assert set(DeferringCounter.seen) == {("u", False)}
    cur = await admin_conn.execute(LIVE_SQL)
    assert await cur.fetchone() == ("p", live_before[1])  # logged, the same index
    assert await counted(app_conn, "test_other") == 120


async def test_a_rebuild_whose_unlogged_copies_crash_recovery_emptied_starts_afresh(
    settings, app_conn, admin_conn
) -> None:
    store = await counted_fixture(settings, admin_conn, app_conn, INDEX_SQL)

    def stop_after_two_pages(done: int, total: int) -> None:
        if done >= 100:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        await rebuild(
            settings.DATABASE_URL,
            DeferringCounter(),
            store=store,
            batch_size=50,
            progress=stop_after_two_pages,
        )
    cur = await admin_conn.execute(
        "SELECT events_applied FROM lufy.projection_rebuilds WHERE name = 'test_other'"
    )
    assert await cur.fetchone() == (100,)
    # What crash recovery does to an UNLOGGED table: its storage is reset to empty.
    await admin_conn.execute("TRUNCATE lufy_shadow.test_other")

    result = await rebuild(settings.DATABASE_URL, DeferringCounter(), store=store, batch_size=50)

    assert not result.resumed
    assert result.events_applied == 120
    assert await counted(app_conn, "test_other") == 120


KEPT_SQL = """
CREATE INDEX IF NOT EXISTS test_other_kept ON lufy.test_other (events, stream_id);
CREATE INDEX IF NOT EXISTS test_other_kept ON lufy_shadow.test_other (events, stream_id);
CREATE INDEX IF NOT EXISTS test_other_lower ON lufy.test_other (lower(stream_id));
CREATE INDEX IF NOT EXISTS test_other_lower ON lufy_shadow.test_other (lower(stream_id));
"""

# Each index of the table with its definition and validity, and whether the expression index
# has statistics (ANALYZE comes after the indexes with expressions).
INDEXES_SQL = """
SELECT (SELECT array_agg(c.relname::text || ' ' || x.indisvalid || ' '
                         || pg_get_indexdef(x.indexrelid) ORDER BY c.relname)
        FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        WHERE x.indrelid = %(t)s::text::regclass),
       EXISTS (SELECT 1 FROM pg_statistic s
               WHERE s.starelid
                     = to_regclass(replace(%(t)s::text, 'test_other', 'test_other_lower'))),
       (SELECT relpersistence FROM pg_class WHERE oid = %(t)s::text::regclass)
"""


class KeepingCounter(DeferringCounter):
    """Defers two indexes (one with an expression) and keeps `test_other_kept` during the
    pages, noting the shadow copy's indexes at each range."""

    rebuild_deferred_indexes: ClassVar[tuple[str, ...]] = ("test_other_events", "test_other_lower")
    kept: ClassVar[list[bool]] = []

    async def apply_range(self, conn: AsyncConnection[Any], log: LogRange) -> None:
        cur = await conn.execute(
            "SELECT to_regclass('lufy_shadow.test_other_kept') IS NOT NULL,"
            " to_regclass('lufy_shadow.test_other_lower') IS NOT NULL"
        )
        row = await cur.fetchone()
        assert row is not None
        self.kept.append(row[0] and not row[1])
        await super().apply_range(conn, log)


async def test_the_end_builds_every_index_apart_and_analyzes_after_expression_indexes(
    settings, app_conn, admin_conn
) -> None:
    """The indexes SET LOGGED would rebuild (kept during the pages) and the deferred ones are
    built one by one on the end's connections: the swapped-in table has every index of the
    live one, valid, with the same definition, and statistics of the expression index."""
    store = await counted_fixture(settings, admin_conn, app_conn, INDEX_SQL + KEPT_SQL)
    cur = await admin_conn.execute(INDEXES_SQL, {"t": "lufy.test_other"})
    live_before = await cur.fetchone()
    assert live_before is not None
    assert len(live_before[0]) == 4  # the primary key, kept, events, lower
    KeepingCounter.kept.clear()

    result = await rebuild(settings.DATABASE_URL, KeepingCounter(), store=store, batch_size=50)

    assert result.swapped
    assert KeepingCounter.kept
    assert all(KeepingCounter.kept)
    cur = await admin_conn.execute(INDEXES_SQL, {"t": "lufy.test_other"})
    assert await cur.fetchone() == (live_before[0], True, "p")
    assert await counted(app_conn, "test_other") == 120
    cur = await admin_conn.execute(
        "SELECT count(*) FROM lufy.test_other WHERE lower(stream_id) = 's1'"
    )
    assert await cur.fetchone() == (1,)
