-- The read barrier, limited to this database.
--
-- pg_snapshot_xmin(pg_current_snapshot()) is cluster-wide: one long transaction in ANY database
-- of the cluster (a bulk load next door, another service's report) held every reader of this
-- log back. The barrier is the oldest in-progress transaction of the statement's snapshot that
-- may belong to this database, or the snapshot's xmax when there is none: every transaction
-- below it is finished, so its committed events are visible to the same snapshot.
--
-- A snapshot entry is excluded only when pg_stat_activity shows a backend of ANOTHER database
-- running exactly that transaction id (a transaction never changes database, and only this
-- database's backends can write lufy.events). Anything unknown - a backend that finished since
-- the snapshot, a prepared transaction, a subtransaction id - stays in, so the barrier can only
-- be as conservative as the cluster-wide xmin, never less safe.
--
-- STABLE: it runs with the caller's snapshot, the one the caller reads lufy.events with.
CREATE FUNCTION lufy.read_barrier() RETURNS xid8
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH snap AS (SELECT pg_current_snapshot() AS s),
    elsewhere AS (
        SELECT a.backend_xid::text::bigint AS xid32
        FROM pg_stat_activity a
        WHERE a.backend_xid IS NOT NULL
          AND a.datid IS NOT NULL
          AND a.datid <> (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
    )
    SELECT coalesce(
        (SELECT min(x)
         FROM snap, pg_snapshot_xip(snap.s) AS x
         WHERE (x::text::bigint % 4294967296) NOT IN (SELECT xid32 FROM elsewhere)),
        (SELECT pg_snapshot_xmax(snap.s) FROM snap)
    )
$$;
COMMENT ON FUNCTION lufy.read_barrier() IS
    'Transactions below this id are finished (for this database): readers of lufy.events pass only them.';
GRANT EXECUTE ON FUNCTION lufy.read_barrier() TO lufy_app;
