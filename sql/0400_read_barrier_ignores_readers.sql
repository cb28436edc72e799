-- The read barrier ignores transactions of roles that cannot append to the log.
--
-- 0003 made the barrier this database's: the oldest in-progress transaction of the snapshot
-- that may write lufy.events. It still counted every backend of this database, so an analyst
-- whose transaction took an xid (a temporary table, or simply SELECT pg_current_xact_id(),
-- which even a read-only transaction may call) and stayed open held back every projection and reactor: e-mails, transcoding,
-- analytics. Such a transaction cannot hold an event, so readers need not wait for it.
--
-- A role may append when it, or a role it is a member of (inherited or not: SET ROLE is one
-- statement away), is a superuser or holds INSERT on any column of lufy.events, or when it may
-- execute a SECURITY DEFINER function owned by such a role (a function could append on its
-- behalf). Anything unknown - a backend without a role, a role dropped since - keeps its
-- transaction in the barrier: the barrier can only be as conservative as 0003's, never less
-- safe.

-- plpgsql for its early returns: lufy_app (the usual holder) is settled by its own privilege,
-- and only a role that is no writer pays for the scan of pg_proc.
CREATE FUNCTION lufy.role_may_append(p_role oid) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles u WHERE u.oid = p_role) THEN
        RETURN true;
    END IF;
    -- Its own (or inherited) privilege, a superuser's included: lufy_app ends here.
    IF has_any_column_privilege(p_role, 'lufy.events'::regclass, 'INSERT') THEN
        RETURN true;
    END IF;
    IF EXISTS (
        SELECT 1 FROM pg_roles w
        WHERE pg_has_role(p_role, w.oid, 'MEMBER')
          AND (w.rolsuper OR has_any_column_privilege(w.oid, 'lufy.events'::regclass, 'INSERT'))
    ) THEN
        RETURN true;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM pg_proc f JOIN pg_roles o ON o.oid = f.proowner
        WHERE f.prosecdef
          AND (o.rolsuper OR has_any_column_privilege(o.oid, 'lufy.events'::regclass, 'INSERT'))
          AND has_function_privilege(p_role, f.oid, 'EXECUTE')
    );
END $$;
COMMENT ON FUNCTION lufy.role_may_append(oid) IS
    'Whether a role could append to lufy.events (directly, through a role it belongs to, or through a SECURITY DEFINER function).';

-- pg_stat_activity is read once per call, and the privilege check runs once per distinct role
-- of this database's backends that hold a transaction id (usually lufy_app alone).
CREATE OR REPLACE FUNCTION lufy.read_barrier() RETURNS xid8
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH snap AS (SELECT pg_current_snapshot() AS s),
    here AS (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()),
    busy AS MATERIALIZED (
        SELECT a.backend_xid::text::bigint AS xid32, a.datid, a.usesysid
        FROM pg_stat_activity a
        WHERE a.backend_xid IS NOT NULL AND a.datid IS NOT NULL
    ),
    readers AS MATERIALIZED (
        SELECT r.usesysid
        FROM (SELECT DISTINCT b.usesysid FROM busy b
              WHERE b.datid = (SELECT oid FROM here) AND b.usesysid IS NOT NULL) r
        -- The first test settles lufy_app without calling the function.
        WHERE NOT has_any_column_privilege(r.usesysid, 'lufy.events'::regclass, 'INSERT')
          AND NOT coalesce(lufy.role_may_append(r.usesysid), true)
    ),
    excluded AS (
        SELECT b.xid32 FROM busy b
        WHERE b.datid <> (SELECT oid FROM here)
           OR b.usesysid IN (SELECT usesysid FROM readers)
    )
    SELECT coalesce(
        (SELECT min(x)
         FROM snap, pg_snapshot_xip(snap.s) AS x
         WHERE (x::text::bigint % 4294967296) NOT IN (SELECT xid32 FROM excluded)),
        (SELECT pg_snapshot_xmax(snap.s) FROM snap)
    )
$$;
COMMENT ON FUNCTION lufy.read_barrier() IS
    'Transactions below this id are finished, or cannot hold events (other databases, roles that cannot append): readers of lufy.events pass only them.';
GRANT EXECUTE ON FUNCTION lufy.role_may_append(oid) TO lufy_app;
