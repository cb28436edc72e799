-- `lufy projections rebuild` (src/lufy/projections/rebuild.py, rebuild_swap.py,
-- rebuild_pages.py), besides the queries it shares with the runner in queries.sql.
-- `{...}` are filled in with psycopg.sql (identifiers, literals, a condition built by
-- lufy.projections.ranged.LogRange.where), `%s` / `%(...)s` are parameters.

-- name: session_settings
-- The rebuild's own connection, before its first statement: a RangeProjection's work tables of a
-- page (temporary tables of up to `rebuild_step` events) stay in memory instead of temporary
-- files (temp_buffers can only be set before a session's first temporary table), and so do the
-- groupings over them. No JIT: the statements over a page's work tables are estimated costly
-- enough to be compiled, which then takes longer than it saves.
SELECT set_config('temp_buffers', '256MB', false), set_config('work_mem', '64MB', false),
       set_config('jit', 'off', false);

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

-- name: shadow_sizes
-- The shadow copies by size on disk, biggest first (ShadowSwap.persist_shadow shares them out).
SELECT t, pg_total_relation_size(to_regclass(format('lufy_shadow.%%I', t)))
FROM unnest(%(tables)s::text[]) t
ORDER BY 2 DESC NULLS LAST, 1;

-- name: set_shadow_logged
-- Fill the shadow copies UNLOGGED (a rebuild's start), make them LOGGED once caught up (before
-- the swap): sql/0940_rebuild_unlogged_shadow.sql.
SELECT lufy.set_shadow_logged(%(tables)s::text[], %(logged)s);

-- name: shadow_lost
-- Whether crash recovery emptied the UNLOGGED shadow copies of a rebuild that had applied
-- events: every copy is then empty on disk (an applied range that wrote no row at all looks the
-- same, and merely starts the rebuild afresh).
SELECT bool_or(c.relpersistence = 'u') AND bool_and(pg_relation_size(c.oid) = 0)
FROM unnest(%(tables)s::text[]) t
JOIN pg_class c ON c.oid = to_regclass(format('lufy_shadow.%%I', t));

-- name: drop_deferred_indexes
SELECT lufy.shadow_indexes(%(tables)s::text[], false, %(names)s::text[]);

-- name: create_shadow_index
-- One index the shadow copy of `table` lacks, as the live table has it
-- (sql/0960_rebuild_persist_indexes.sql).
SELECT lufy.shadow_index(%(table)s, %(index)s);

-- name: rebuilt_indexes
-- The shadow copies' indexes that SET LOGGED would rebuild one after the other and that the end
-- of a rebuild builds itself instead, each on a free connection: those the live table also has
-- (same name) and that back no constraint (those stay: they are dropped only with it).
SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}')
FROM unnest(%(tables)s::text[]) t
JOIN pg_index x ON x.indrelid = to_regclass(format('lufy_shadow.%%I', t))
JOIN pg_class c ON c.oid = x.indexrelid
WHERE NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
  AND EXISTS (SELECT 1 FROM pg_index y JOIN pg_class d ON d.oid = y.indexrelid
              WHERE y.indrelid = to_regclass(format('lufy.%%I', t)) AND d.relname = c.relname);

-- name: missing_indexes
-- The indexes of the live tables that their shadow copies lack (table, index, whether it has
-- expressions: ANALYZE gathers statistics of those, so it comes after them).
SELECT t, c.relname::text, x.indexprs IS NOT NULL
FROM unnest(%(tables)s::text[]) t
JOIN pg_index x ON x.indrelid = to_regclass(format('lufy.%%I', t))
JOIN pg_class c ON c.oid = x.indexrelid
WHERE NOT EXISTS (SELECT 1 FROM pg_index y JOIN pg_class d ON d.oid = y.indexrelid
                  WHERE y.indrelid = to_regclass(format('lufy_shadow.%%I', t))
                    AND d.relname = c.relname)
ORDER BY pg_relation_size(x.indexrelid) DESC, 1, 2;
