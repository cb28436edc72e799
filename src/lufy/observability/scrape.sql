-- Queries `render_metrics` runs at scrape time (as the app role). Keep them cheap: a scrape
-- every 15 s from every Prometheus must not load the database.

-- name: log_head
SELECT coalesce(max(global_position), 0) AS head FROM lufy.events;

-- name: checkpoint_lag
-- Each reader of the log: its checkpoint, how many committed events it has not applied yet
-- (counted up to a cap, so a reader far behind costs a bounded scan) and the age of the oldest.
SELECT c.name,
       c.global_position,
       behind.events,
       coalesce(extract(epoch FROM clock_timestamp() - behind.oldest), 0)::float8 AS lag_seconds,
       extract(epoch FROM clock_timestamp() - c.updated_at)::float8 AS idle_seconds
FROM lufy.checkpoints c
CROSS JOIN LATERAL (
    SELECT count(*) AS events, min(pending.recorded_at) AS oldest
    FROM (
        SELECT e.recorded_at
        FROM lufy.events e
        WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)
          AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY e.transaction_id, e.global_position
        LIMIT %(cap)s
    ) pending
) behind
ORDER BY c.name;

-- name: optional_tables
-- Tables other contexts' migrations add; a scrape reads them only once they exist.
SELECT to_regclass('lufy.projection_state') IS NOT NULL AS has_projection_state,
       to_regclass('lufy.jobs') IS NOT NULL AS has_jobs;

-- name: projection_states
SELECT name, state FROM lufy.projection_state;

-- name: job_counts
-- Every job the log implies, per queue and status, with the attempts they took (an attempt
-- beyond the first is a failure that was retried). One pass over lufy.jobs: jobs are few next to
-- events (an e-mail or an upload each), so this stays cheap at scrape frequency.
SELECT queue, status, count(*) AS jobs, coalesce(sum(attempts), 0) AS attempts
FROM lufy.jobs
GROUP BY queue, status;
