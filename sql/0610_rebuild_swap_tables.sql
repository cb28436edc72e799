-- A rebuild's swap exchanges the live tables with their shadow copies (lufy <-> lufy_shadow) by
-- moving them between schemas in the swap's transaction, instead of copying every row
-- (src/lufy/projections/rebuild_swap.py). lufy_app owns nothing, so it swaps, analyzes and
-- truncates through these functions, owned by the migration owner, which only ever touch
-- tables that exist in both schemas.
--
-- What belongs to the table travels with it (indexes, constraints, triggers, identity
-- sequences, policies); what is attached from outside is kept in place: the views reading the
-- live table are re-pointed by name (CREATE OR REPLACE with their own definition: same oid,
-- grants, comments, options and dependent views), and each side keeps its privileges, its
-- comments and its row-level-security switches. Anything else bound to the table's oid (a
-- foreign key from another table, a materialized view, a function over its row type, a
-- publication) or policies that differ between the copies make the function refuse
-- (feature_not_supported): the caller then copies the rows instead, as before.
CREATE SCHEMA IF NOT EXISTS lufy_swap;
REVOKE ALL ON SCHEMA lufy_swap FROM PUBLIC;

-- The pairs (live, shadow) of `tables`; raises unless each exists in both schemas.
CREATE OR REPLACE FUNCTION lufy.shadow_pairs(tables text[])
RETURNS TABLE (name text, live oid, shadow oid)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        name := t;
        live := to_regclass(format('lufy.%I', t));
        shadow := to_regclass(format('lufy_shadow.%I', t));
        IF live IS NULL OR shadow IS NULL
           OR (SELECT relkind FROM pg_class WHERE oid = live) <> 'r'
           OR (SELECT relkind FROM pg_class WHERE oid = shadow) <> 'r' THEN
            RAISE EXCEPTION 'lufy.% has no shadow copy in lufy_shadow', t
                USING ERRCODE = 'undefined_table';
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION lufy.shadow_pairs(text[]) FROM PUBLIC;

-- Privileges of `source` given to `target` (every grant of target revoked first).
CREATE OR REPLACE FUNCTION lufy.copy_table_acl(source oid, target oid, acl aclitem[])
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    owner oid := (SELECT relowner FROM pg_class WHERE oid = target);
BEGIN
    FOR r IN SELECT DISTINCT a.grantee
             FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
             WHERE c.oid = target LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', target::regclass,
                       CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.grantee::regrole::text) END);
    END LOOP;
    FOR r IN SELECT a.grantee, a.privilege_type, a.is_grantable
             FROM aclexplode(coalesce(acl, acldefault('r', owner))) a LOOP
        EXECUTE format('GRANT %s ON %s TO %s%s', r.privilege_type, target::regclass,
                       CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.grantee::regrole::text) END,
                       CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION lufy.copy_table_acl(oid, oid, aclitem[]) FROM PUBLIC;

-- ANALYZE the shadow copies (before a swap: the swapped-in tables come with statistics), or
-- TRUNCATE them (a rebuild's start, and after a swap: they then hold the old rows).
CREATE OR REPLACE FUNCTION lufy.maintain_shadow_tables(tables text[], action text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
BEGIN
    IF action NOT IN ('ANALYZE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'unknown action %', action USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR p IN SELECT * FROM lufy.shadow_pairs(tables) LOOP
        EXECUTE format('%s %s', action, p.shadow::regclass);
    END LOOP;
END $$;

-- Exchange each live table of `tables` with its shadow copy. Takes ACCESS EXCLUSIVE locks on
-- both (the caller's lock_timeout applies); readers see the old tables until commit.
CREATE OR REPLACE FUNCTION lufy.swap_shadow_tables(tables text[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    v record;
    blocker text;
    pairs jsonb := '[]';
    views jsonb;
BEGIN
    FOR p IN SELECT * FROM lufy.shadow_pairs(tables) LOOP
        EXECUTE format('LOCK TABLE %s, %s IN ACCESS EXCLUSIVE MODE', p.live::regclass,
                       p.shadow::regclass);
        -- Bound to the oid and not re-pointable by name: refuse.
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid) INTO blocker
        FROM pg_depend d
        WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid IN (p.live, p.shadow)
          AND d.deptype = 'n'
          AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS (
                   SELECT 1 FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
                   WHERE r.oid = d.objid AND c.relkind = 'v'))
          -- (its own constraints, defaults and generated columns, triggers, policies,
          -- indexes and extended statistics travel with it)
          AND (d.classid, d.objid) NOT IN (
              SELECT 'pg_constraint'::regclass::oid, oid FROM pg_constraint
              WHERE conrelid IN (p.live, p.shadow)
              UNION ALL SELECT 'pg_attrdef'::regclass::oid, oid FROM pg_attrdef
              WHERE adrelid IN (p.live, p.shadow)
              UNION ALL SELECT 'pg_trigger'::regclass::oid, oid FROM pg_trigger
              WHERE tgrelid IN (p.live, p.shadow)
              UNION ALL SELECT 'pg_policy'::regclass::oid, oid FROM pg_policy
              WHERE polrelid IN (p.live, p.shadow)
              UNION ALL SELECT 'pg_class'::regclass::oid, indexrelid FROM pg_index
              WHERE indrelid IN (p.live, p.shadow)
              UNION ALL SELECT 'pg_statistic_ext'::regclass::oid, oid FROM pg_statistic_ext
              WHERE stxrelid IN (p.live, p.shadow))
        UNION ALL
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
        FROM pg_depend d JOIN pg_class c ON c.reltype = d.refobjid
        WHERE d.refclassid = 'pg_type'::regclass AND c.oid IN (p.live, p.shadow)
          AND d.deptype = 'n'
        UNION ALL
        SELECT 'publication ' || pr.prpubid::text FROM pg_publication_rel pr
        WHERE pr.prrelid IN (p.live, p.shadow)
        LIMIT 1;
        IF blocker IS NULL AND (
            SELECT array_agg(x ORDER BY x) FROM (
                SELECT format('%s %s %s %s %s %s', polname, polcmd, polpermissive, polroles,
                              pg_get_expr(polqual, polrelid),
                              pg_get_expr(polwithcheck, polrelid)) AS x
                FROM pg_policy WHERE polrelid = p.live) l
        ) IS DISTINCT FROM (
            SELECT array_agg(x ORDER BY x) FROM (
                SELECT replace(format('%s %s %s %s %s %s', polname, polcmd, polpermissive,
                                      polroles, pg_get_expr(polqual, polrelid),
                                      pg_get_expr(polwithcheck, polrelid)),
                               'lufy_shadow.', 'lufy.') AS x
                FROM pg_policy WHERE polrelid = p.shadow) s
        ) THEN
            blocker := 'a difference between its policies and the shadow copy''s';
        END IF;
        IF blocker IS NOT NULL THEN
            RAISE EXCEPTION 'cannot swap lufy.% by schema: % depends on it', p.name, blocker
                USING ERRCODE = 'feature_not_supported';
        END IF;
        -- The views reading either table, with their definitions (names qualified: the
        -- search_path is pg_catalog only) and options.
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'view', c.oid::regclass::text, 'def', pg_get_viewdef(c.oid),
                   'opts', array_to_string(c.reloptions, ', '))), '[]')
        INTO views
        FROM pg_class c
        WHERE c.relkind = 'v' AND c.oid IN (
            SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
            WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
              AND d.refobjid IN (p.live, p.shadow) AND r.ev_class NOT IN (p.live, p.shadow));
        pairs := pairs || jsonb_build_array(jsonb_build_object(
            'name', p.name, 'live', p.live, 'shadow', p.shadow, 'views', views,
            'live_acl', (SELECT relacl FROM pg_class WHERE oid = p.live)::text[],
            'shadow_acl', (SELECT relacl FROM pg_class WHERE oid = p.shadow)::text[]));
    END LOOP;
    FOR p IN SELECT x.* FROM jsonb_to_recordset(pairs)
                 AS x(name text, live oid, shadow oid, views jsonb, live_acl text[],
                      shadow_acl text[]) LOOP
        EXECUTE format('ALTER TABLE lufy.%I SET SCHEMA lufy_swap', p.name);
        EXECUTE format('ALTER TABLE lufy_shadow.%I SET SCHEMA lufy', p.name);
        EXECUTE format('ALTER TABLE lufy_swap.%I SET SCHEMA lufy_shadow', p.name);
        -- Each side keeps its privileges, comments and row-level-security switches.
        PERFORM lufy.copy_table_acl(p.live, p.shadow, p.live_acl::aclitem[]);
        PERFORM lufy.copy_table_acl(p.shadow, p.live, p.shadow_acl::aclitem[]);
        PERFORM lufy.swap_table_attributes(p.live, p.shadow);
        FOR v IN SELECT * FROM jsonb_to_recordset(p.views) AS x(view text, def text, opts text)
        LOOP
            EXECUTE format('CREATE OR REPLACE VIEW %s%s AS %s', v.view,
                           CASE WHEN coalesce(v.opts, '') = '' THEN ''
                                ELSE ' WITH (' || v.opts || ')' END,
                           rtrim(v.def, '; '));
        END LOOP;
    END LOOP;
END $$;

-- After the move: `a` and `b` exchange their comments (table and columns) and row-level
-- security switches, so that each schema keeps what it had.
CREATE OR REPLACE FUNCTION lufy.swap_table_attributes(a oid, b oid)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    ta text := obj_description(a, 'pg_class');
    tb text := obj_description(b, 'pg_class');
    ca pg_class := (SELECT c FROM pg_class c WHERE c.oid = a);
    cb pg_class := (SELECT c FROM pg_class c WHERE c.oid = b);
    columns jsonb := (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'name', x.attname, 'ca', col_description(a, x.attnum),
                   'cb', col_description(b, y.attnum))), '[]')
        FROM pg_attribute x JOIN pg_attribute y ON y.attrelid = b AND y.attname = x.attname
        WHERE x.attrelid = a AND x.attnum > 0 AND NOT x.attisdropped);
BEGIN
    EXECUTE format('COMMENT ON TABLE %s IS %L', a::regclass, tb);
    EXECUTE format('COMMENT ON TABLE %s IS %L', b::regclass, ta);
    FOR r IN SELECT * FROM jsonb_to_recordset(columns) AS x(name text, ca text, cb text) LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', a::regclass, r.name, r.cb);
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', b::regclass, r.name, r.ca);
    END LOOP;
    EXECUTE format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', a::regclass,
                   CASE WHEN cb.relrowsecurity THEN 'ENABLE' ELSE 'DISABLE' END,
                   CASE WHEN cb.relforcerowsecurity THEN 'FORCE' ELSE 'NO FORCE' END);
    EXECUTE format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', b::regclass,
                   CASE WHEN ca.relrowsecurity THEN 'ENABLE' ELSE 'DISABLE' END,
                   CASE WHEN ca.relforcerowsecurity THEN 'FORCE' ELSE 'NO FORCE' END);
END $$;
REVOKE ALL ON FUNCTION lufy.swap_table_attributes(oid, oid) FROM PUBLIC;

REVOKE ALL ON FUNCTION lufy.maintain_shadow_tables(text[], text),
    lufy.swap_shadow_tables(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lufy.maintain_shadow_tables(text[], text),
    lufy.swap_shadow_tables(text[]) TO lufy_app;
