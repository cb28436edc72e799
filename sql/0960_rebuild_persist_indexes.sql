-- The end of a rebuild (src/lufy/projections/rebuild_persist.py) builds the indexes its shadow
-- copies lack one at a time, each on whichever of its connections is free (the deferred indexes
-- of the biggest table, built one after the other after its SET LOGGED, were the longest stretch
-- of that end). One index `index_name` of the live table `tbl` that its shadow copy lacks,
-- built on the copy with the live index's name and definition (nothing when the copy has it);
-- lufy_app owns no table, so it goes through this function, owned by the migration owner, as
-- through lufy.shadow_indexes (sql/0940_rebuild_unlogged_shadow.sql).
CREATE OR REPLACE FUNCTION lufy.shadow_index(tbl text, index_name text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    statement text;
BEGIN
    SELECT format('CREATE %sINDEX %I ON %s %s',
                  CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END, c.relname,
                  p.shadow::regclass,
                  substring(pg_get_indexdef(x.indexrelid) FROM ' USING .*$'))
    INTO statement
    FROM lufy.shadow_pairs(ARRAY[tbl]) p
    JOIN pg_index x ON x.indrelid = p.live
    JOIN pg_class c ON c.oid = x.indexrelid AND c.relname = index_name
    WHERE NOT EXISTS (SELECT 1 FROM pg_index y JOIN pg_class d ON d.oid = y.indexrelid
                      WHERE y.indrelid = p.shadow AND d.relname = index_name);
    IF statement IS NOT NULL THEN
        EXECUTE statement;
    END IF;
END $$;
REVOKE ALL ON FUNCTION lufy.shadow_index(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lufy.shadow_index(text, text) TO lufy_app;
