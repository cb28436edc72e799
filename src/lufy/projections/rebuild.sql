-- `lufy projections rebuild` (src/lufy/projections/rebuild.py, rebuild_swap.py,
-- rebuild_pages.py), besides the queries it shares with the runner in queries.sql.
-- `{...}` are filled in with psycopg.sql (identifiers, literals, a condition built by
-- lufy.projections.ranged.LogRange.where), `%s` / `%(...)s` are parameters.

-- name: end_rebuilding
UPDATE lufy.projection_state SET state = 'running', updated_at = now()
WHERE name = %s AND state = 'rebuilding';

-- name: clear_table
DELETE FROM {table};

-- name: one_worker
SET LOCAL max_parallel_workers_per_gather = 0;

-- name: no_sort
SELECT set_config('enable_sort', 'off', true);

-- name: set_lock_timeout
SET LOCAL lock_timeout = {timeout};

-- name: reset_lock_timeout
SET LOCAL lock_timeout = 0;

-- name: lock_exclusive
LOCK TABLE {table} IN EXCLUSIVE MODE;

-- name: count_range
SELECT count(*) FROM lufy.events WHERE {where} AND type = ANY(%(types)s);

-- name: copy_table
INSERT INTO {target} ({columns}) OVERRIDING SYSTEM VALUE SELECT {columns} FROM {source};

-- name: count_missing
-- Rows of the left table that the right one lacks (duplicates counted).
SELECT count(*) FROM (SELECT {columns} FROM {left} EXCEPT ALL SELECT {columns} FROM {right}) d;

-- name: swap_tables
-- Exchange the live tables with their shadow copies (sql/0610_rebuild_swap_tables.sql).
SELECT lufy.swap_shadow_tables(%(tables)s::text[]);

-- name: analyze_shadow
SELECT lufy.maintain_shadow_tables(%(tables)s::text[], 'ANALYZE');

-- name: truncate_shadow
SELECT lufy.maintain_shadow_tables(%(tables)s::text[], 'TRUNCATE');
