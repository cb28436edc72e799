-- The stream grant's statements on generic plans (docs/benchmarks.md, "Time to first segment,
-- the grant's server side (st-ttfs)").
--
-- PL/pgSQL caches a plan per statement and session, but a statement with parameters is planned
-- again on every call for as long as the plan cache finds its custom plans no dearer than the
-- generic one: for lufy.issue_stream_grant (and lufy.append_to_stream, which it calls) that was
-- every call, ~180 µs of the backend's ~700 µs a grant (measured with the backend's CPU time from
-- /proc, 1,000 grants each way, interleaved). Every statement the grant runs is an index probe
-- whose generic plan is the custom one: the track by its primary key, the event id by its unique
-- index, the stream's last version by a backward scan of events_stream_version_key, the
-- insert, the listener's subscriptions by user id.
--
-- A function's SET clause holds for the call only, nested calls included, and is restored when
-- it returns: the caller's session keeps its own setting; what the grant sets for its transaction
-- with set_config(..., true) (the RLS binding, synchronous_commit) is not a SET clause's variable
-- and stays set for the rest of the transaction, as before (tests/integration/test_stream_grant.py).
-- Both forms: the ten-argument one of 0820 serves API processes of the previous release during
-- a rolling deploy, and the sql/0821 form calls it.
ALTER FUNCTION lufy.issue_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION lufy.issue_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz, boolean)
    SET plan_cache_mode = force_generic_plan;
