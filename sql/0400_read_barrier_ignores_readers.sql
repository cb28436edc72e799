-- The read barrier ignores transactions of roles that cannot append to the log.
--
-- 0003 made the barrier this database's: the oldest in-progress transaction of the snapshot
-- that may write lufy.events. It still counted every backend of this database, so an analyst
-- whose transaction took an xid (a temporary table, a SELECT ... FOR UPDATE, anything that
-- writes) and stayed open held back every projection and reactor: e-mails, transcoding,
-- analytics. Such a transaction cannot hold an event, so readers need not wait for it.
--
-- A role may append when it, or a role it is a member of (inherited or not: SET ROLE is one
-- statement away), is a superuser or holds INSERT on any column of lufy.events, or when it may
-- execute a SECURITY DEFINER function owned by such a role (a function could append on its
-- behalf). Anything unknown - a backend without a role, a role dropped since - keeps its
-- transaction in the barrier: the barrier can only be as conservative as 0003's, never less
-- safe.

CREATE FUNCTION lufy.role_may_append(p_role oid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH writers AS (
        SELECT r.oid FROM pg_roles r
        WHERE r.rolsuper OR has_any_column_privilege(r.oid, 'lufy.events'::regclass, 'INSERT')
    )
    SELECT NOT EXISTS (SELECT 1 FROM pg_roles u WHERE u.oid = p_role)
        OR EXISTS (
            SELECT 1 FROM writers w WHERE pg_has_role(p_role, w.oid, 'MEMBER')
        )
        OR EXISTS (
            SELECT 1 FROM pg_proc f
            WHERE f.prosecdef
              AND f.proowner IN (SELECT w.oid FROM writers w)
              AND has_function_privilege(p_role, f.oid, 'EXECUTE')
        )
$$;
COMMENT ON FUNCTION lufy.role_may_append(oid) IS
    'Whether a role could append to lufy.events (directly, through a role it belongs to, or through a SECURITY DEFINER function).';

CREATE OR REPLACE FUNCTION lufy.read_barrier() RETURNS xid8
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH snap AS (SELECT pg_current_snapshot() AS s),
    here AS (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()),
    excluded AS (
        SELECT a.backend_xid::text::bigint AS xid32
        FROM pg_stat_activity a
        WHERE a.backend_xid IS NOT NULL
          AND a.datid IS NOT NULL
          AND (a.datid <> (SELECT oid FROM here)
               OR (a.usesysid IS NOT NULL
                   AND NOT coalesce(lufy.role_may_append(a.usesysid), true)))
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
