-- The in-process test worker (src/lufy/jobs/testing.py).

-- name: unfinished
-- Jobs of these queues not done or dead yet.
SELECT count(*) FROM lufy.jobs WHERE status IN ('pending', 'running', 'retrying')
AND queue = ANY(%s);
