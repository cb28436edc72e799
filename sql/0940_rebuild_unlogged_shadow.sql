-- A rebuild (src/lufy/projections/rebuild.py) fills its shadow copies UNLOGGED and without the
-- indexes its projection names as read by others only (`rebuild_deferred_indexes`,
-- src/lufy/projections/ranged.py); once it has caught up, before the swap, the copies are made
-- LOGGED and the missing indexes are built, each in one sorted pass. The pages a rebuild applies
-- then write no WAL (measured: a rebuild of 330,000 events wrote about 6 times the rebuilt
-- tables' size in WAL: index and TOAST pages rewritten page after page, full-page images after
-- each checkpoint), and SET LOGGED and CREATE INDEX write each table's and index's final
-- contents to the WAL once, so what is swapped in is as durable and as replicated as before.
-- An UNLOGGED table is emptied by crash recovery: a rebuild resuming after one finds every
-- shadow copy empty although it applied events, and starts afresh (rebuild.sql, `shadow_lost`).
--
-- lufy_app owns no table, so it goes through these functions, owned by the migration owner,
-- which only ever touch tables that exist in both schemas (as lufy.maintain_shadow_tables,
-- sql/0610_rebuild_swap_tables.sql).
CREATE OR REPLACE FUNCTION lufy.set_shadow_logged(tables text[], logged boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT * FROM lufy.shadow_pairs(tables) LOOP
        IF (SELECT relpersistence = 'p' FROM pg_class WHERE oid = p.shadow) = logged THEN
            CONTINUE;
        END IF;
        IF logged THEN
            EXECUTE format('ALTER TABLE %s SET LOGGED', p.shadow::regclass);
        ELSE
            -- A table that cannot be unlogged (a foreign key between it and a logged table)
            -- stays logged: only slower to fill.
            BEGIN
                EXECUTE format('ALTER TABLE %s SET UNLOGGED', p.shadow::regclass);
            EXCEPTION WHEN invalid_table_definition OR feature_not_supported
                           OR object_not_in_prerequisite_state THEN
                NULL;
            END;
        END IF;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION lufy.set_shadow_logged(text[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lufy.set_shadow_logged(text[], boolean) TO lufy_app;

-- Without `build`: drop the indexes `names` of the shadow copies (none that backs a
-- constraint). With it: give each shadow copy every index its live table has and it lacks,
-- with the live index's name and definition. (A rebuild's start, and once it has caught up:
-- one sorted build of each index instead of maintaining it row by row, page after page.)
CREATE OR REPLACE FUNCTION lufy.shadow_indexes(tables text[], build boolean, names text[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pair record;
    i record;
BEGIN
    FOR pair IN SELECT * FROM lufy.shadow_pairs(tables) LOOP
        IF NOT build THEN
            FOR i IN SELECT x.indexrelid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                     WHERE x.indrelid = pair.shadow AND c.relname = ANY(names)
                       AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                                       WHERE k.conindid = x.indexrelid) LOOP
                EXECUTE format('DROP INDEX %s', i.indexrelid::regclass);
            END LOOP;
            CONTINUE;
        END IF;
        FOR i IN SELECT c.relname, x.indisunique, pg_get_indexdef(x.indexrelid) AS def
                 FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                 WHERE x.indrelid = pair.live
                   AND NOT EXISTS (SELECT 1 FROM pg_index y JOIN pg_class d
                                   ON d.oid = y.indexrelid
                                   WHERE y.indrelid = pair.shadow AND d.relname = c.relname)
                 ORDER BY c.relname LOOP
            -- "CREATE INDEX name ON lufy.t USING method (...) [WHERE ...]", on the copy.
            EXECUTE format('CREATE %sINDEX %I ON %s %s',
                           CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, i.relname,
                           pair.shadow::regclass, substring(i.def FROM ' USING .*$'));
        END LOOP;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION lufy.shadow_indexes(text[], boolean, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lufy.shadow_indexes(text[], boolean, text[]) TO lufy_app;
