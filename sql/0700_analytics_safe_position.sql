-- analytics.safe_position(): the commit-order position below which no event can still appear.
--
-- Positions (global_position) are taken from a sequence when a transaction inserts, not when it
-- commits: an extract reading `global_position > :last` skips the events of a transaction that
-- commits after a later-numbered one. Every transaction below the read barrier has finished (or
-- cannot hold events), so an event of analytics.events with transaction_id < safe_position() is
-- either visible in the statement that asked, or never will be. Incremental extracts take the
-- rows `transaction_id > :last_written AND transaction_id < analytics.safe_position()` in one
-- statement (or one REPEATABLE READ transaction), ordered by (transaction_id, global_position).
--
-- SECURITY INVOKER, on purpose: a SECURITY DEFINER function owned by a role that may append
-- would make every role allowed to call it count as a writer for the read barrier (0400), and
-- analysts' open transactions would hold projections back again. The caller needs to reach the
-- barrier: USAGE on schema lufy and EXECUTE on the two functions it uses, nothing else in lufy.
-- (pg_stat_activity hides other roles' transaction ids from a non-superuser, so an analyst's
-- barrier can be more conservative than the projector's, never less safe.)
CREATE FUNCTION analytics.safe_position() RETURNS xid8
LANGUAGE sql STABLE AS $$
    SELECT lufy.read_barrier()
$$;
COMMENT ON FUNCTION analytics.safe_position() IS
    'Events of analytics.events with transaction_id below this are final: read them in the same statement or snapshot.';
REVOKE ALL ON FUNCTION analytics.safe_position() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.safe_position() TO lufy_analyst, lufy_app;
GRANT USAGE ON SCHEMA lufy TO lufy_analyst;
GRANT EXECUTE ON FUNCTION lufy.read_barrier(), lufy.role_may_append(oid) TO lufy_analyst;
