-- The scheduler's own statements (lufy.projections.maintenance); the ledger's are in queries.sql.

-- name: lock_schedule
-- Serialise schedulers (two leaders for a moment) on the same decision: one lock per actor.
SELECT pg_advisory_xact_lock(%(ns)s, hashtext(%(actor)s));
