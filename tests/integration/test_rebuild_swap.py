"""The swap of a rebuild exchanges the live tables with their shadow copies (moved between the
schemas) and keeps what is attached to the live tables from outside: views, privileges,
comments, row-level security; it copies rows instead when something it cannot re-point is
bound to a table; an interrupted swap leaves everything as it was and resumes."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import AsyncConnection

from lufy.projections.rebuild import rebuild
from lufy.projections.rebuild_swap import ShadowSwap

from ._projection_helpers import CountingProjection, counted, counted_fixture

# Attached to the live table only (the shadow copy has the policy too: the same projections/
# file creates it in both schemas; a difference would make the swap copy rows instead).
ATTACHED_SQL = """
ALTER TABLE lufy.test_counter ADD COLUMN doubled bigint GENERATED ALWAYS AS (total * 2) STORED;
ALTER TABLE lufy_shadow.test_counter
    ADD COLUMN doubled bigint GENERATED ALWAYS AS (total * 2) STORED;
CREATE VIEW analytics.test_counter_totals WITH (security_barrier) AS
    SELECT stream_id, total, doubled FROM lufy.test_counter;
COMMENT ON VIEW analytics.test_counter_totals IS 'totals per stream';
GRANT SELECT ON analytics.test_counter_totals TO lufy_analyst;
CREATE VIEW analytics.test_counter_sum AS SELECT sum(total) AS total
    FROM analytics.test_counter_totals;
GRANT SELECT ON lufy.test_counter TO lufy_analyst;
COMMENT ON TABLE lufy.test_counter IS 'live counter';
COMMENT ON COLUMN lufy.test_counter.total IS 'sum of n';
COMMENT ON TABLE lufy_shadow.test_counter IS 'shadow counter';
ALTER TABLE lufy.test_counter ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE lufy_shadow.test_counter ENABLE ROW LEVEL SECURITY;
CREATE POLICY readers ON lufy.test_counter USING (
    (select current_setting('app.current_role', true)) IN ('system', 'admin'));
CREATE POLICY readers ON lufy_shadow.test_counter USING (
    (select current_setting('app.current_role', true)) IN ('system', 'admin'));
"""

STATE_SQL = """
SELECT c.oid, obj_description(c.oid, 'pg_class'), col_description(c.oid, 3),
       c.relrowsecurity, c.relforcerowsecurity,
       has_table_privilege('lufy_analyst', c.oid, 'SELECT'),
       has_table_privilege('lufy_app', c.oid, 'INSERT')
FROM pg_class c WHERE c.oid = to_regclass(%s)
"""


async def _state(conn: AsyncConnection[Any], table: str) -> tuple[Any, ...]:
    cur = await conn.execute(STATE_SQL, [table])
    row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def test_the_swap_exchanges_the_tables_and_keeps_views_grants_comments_and_rls(
    settings, app_conn, admin_conn
) -> None:
    store = await counted_fixture(settings, admin_conn, app_conn, ATTACHED_SQL)
    live_before = await _state(admin_conn, "lufy.test_counter")
    shadow_before = await _state(admin_conn, "lufy_shadow.test_counter")

    result = await rebuild(settings.DATABASE_URL, CountingProjection(), store=store)

    assert result.swapped
    assert result.events_applied == 120
    live = await _state(admin_conn, "lufy.test_counter")
    shadow = await _state(admin_conn, "lufy_shadow.test_counter")
    # The tables were exchanged, not copied into...
    assert live[0] == shadow_before[0]
    assert shadow[0] == live_before[0]
    # ...and each schema kept its comments, row-level security and privileges.
    assert live[1:] == live_before[1:] == ("live counter", "sum of n", True, True, True, True)
    assert shadow[1:] == shadow_before[1:]
    assert shadow[5] is False  # the analyst's grant stayed with the live table
    # The views read the new live table, with their options, comments and grants.
    await admin_conn.execute("SELECT set_config('app.current_role', 'system', false)")
    cur = await admin_conn.execute(
        "SELECT (SELECT total FROM analytics.test_counter_sum),"
        " obj_description('analytics.test_counter_totals'::regclass, 'pg_class'),"
        " has_table_privilege('lufy_analyst', 'analytics.test_counter_totals', 'SELECT'),"
        " (SELECT reloptions FROM pg_class WHERE oid = 'analytics.test_counter_totals'::regclass),"
        " (SELECT count(*) FROM lufy_shadow.test_counter)"
    )
    assert await cur.fetchone() == (240, "totals per stream", True, ["security_barrier=true"], 0)
    # Row-level security still applies to the live table: a role outside the policy sees none.
    await app_conn.execute("SELECT set_config('app.current_role', 'listener', false)")
    assert await counted(app_conn) == 0
    await app_conn.execute("SELECT set_config('app.current_role', 'system', false)")
    assert await counted(app_conn) == 120

    # A second rebuild exchanges them back, just as well.
    again = await rebuild(settings.DATABASE_URL, CountingProjection(), store=store)
    assert again.swapped
    assert (await _state(admin_conn, "lufy.test_counter")) == live_before
    assert await counted(app_conn) == 120


async def test_a_table_bound_by_a_materialized_view_gets_its_rows_copied_instead(
    settings, app_conn, admin_conn
) -> None:
    store = await counted_fixture(settings, admin_conn, app_conn, ATTACHED_SQL)
    await admin_conn.execute(
        "CREATE MATERIALIZED VIEW public.test_counter_mv AS SELECT count(*) FROM lufy.test_counter"
    )
    live_before = await _state(admin_conn, "lufy.test_counter")

    result = await rebuild(settings.DATABASE_URL, CountingProjection(), store=store)

    assert result.swapped
    assert await _state(admin_conn, "lufy.test_counter") == live_before
    await app_conn.execute("SELECT set_config('app.current_role', 'system', false)")
    assert await counted(app_conn) == 120


class _Interrupted(Exception):
    pass


async def test_a_swap_interrupted_after_the_exchange_leaves_all_as_it_was_and_resumes(
    settings, app_conn, admin_conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await counted_fixture(settings, admin_conn, app_conn, ATTACHED_SQL)
    live_before = await _state(admin_conn, "lufy.test_counter")

    async def fail(self: ShadowSwap, *args: Any) -> None:
        raise _Interrupted  # after the tables were exchanged, before the swap commits

    with monkeypatch.context() as patch:
        patch.setattr(ShadowSwap, "_record", fail)
        with pytest.raises(_Interrupted):
            await rebuild(settings.DATABASE_URL, CountingProjection(), store=store)
    assert await _state(admin_conn, "lufy.test_counter") == live_before
    await app_conn.execute("SELECT set_config('app.current_role', 'system', false)")
    assert await counted(app_conn) == 0  # the live table as it was: never projected
    cur = await admin_conn.execute(
        "SELECT events_applied FROM lufy.projection_rebuilds WHERE name = 'test_counter'"
    )
    assert await cur.fetchone() == (120,)  # the shadow copy is kept for the next attempt

    result = await rebuild(settings.DATABASE_URL, CountingProjection(), store=store)
    assert result.resumed
    assert result.swapped
    assert result.events_applied == 120
    assert (await _state(admin_conn, "lufy.test_counter"))[0] != live_before[0]
    assert await counted(app_conn) == 120
