-- analytics.safe_position(): the commit-order position below which no event can still appear.
--
-- Positions (global_position) are taken from a sequence when a transaction inserts, not when it
-- commits: an extract reading `global_position > :last` skips the events of a transaction that
-- commits after a later-numbered one. Every transaction below the read barrier has finished, so
-- an event of analytics.events with transaction_id < safe_position() is either visible in the
-- statement that asked, or never will be. Incremental extracts take the rows
-- `transaction_id > :last_written AND transaction_id < analytics.safe_position()` in one
-- statement (or one REPEATABLE READ transaction), ordered by (transaction_id, global_position).
--
-- SECURITY DEFINER: the barrier reads pg_stat_activity, whose transaction ids the analyst role
-- may not see (it would then only be more conservative). STABLE: it uses the caller's snapshot.
CREATE FUNCTION analytics.safe_position() RETURNS xid8
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT lufy.read_barrier()
$$;
COMMENT ON FUNCTION analytics.safe_position() IS
    'Events of analytics.events with transaction_id below this are final: read them in the same statement or snapshot.';
REVOKE ALL ON FUNCTION analytics.safe_position() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.safe_position() TO lufy_analyst, lufy_app;
