-- name: claim_job
-- Take a job for this delivery: new, waiting, retrying, or running under an expired lease.
-- No row back means it is done, dead, or running elsewhere: the delivery is dropped.
INSERT INTO lufy.jobs AS j (actor, job_key, queue, payload, status, attempts, correlation_id,
                            causation_id, started_at, lease_until)
VALUES (%(actor)s, %(job_key)s, %(queue)s, %(payload)s, 'running', 1, %(correlation_id)s,
        %(causation_id)s, now(), now() + make_interval(secs => %(lease_seconds)s))
ON CONFLICT (actor, job_key) DO UPDATE
SET status = 'running', attempts = j.attempts + 1, started_at = now(),
    lease_until = excluded.lease_until
WHERE j.status IN ('pending', 'retrying')
   OR (j.status = 'running' AND j.lease_until < now())
RETURNING j.attempts;

-- name: complete_job
UPDATE lufy.jobs SET status = 'done', finished_at = now(), lease_until = NULL, last_error = NULL
WHERE actor = %(actor)s AND job_key = %(job_key)s;

-- name: fail_job
UPDATE lufy.jobs SET status = 'retrying', lease_until = NULL, last_error = %(error)s
WHERE actor = %(actor)s AND job_key = %(job_key)s AND status = 'running';

-- name: bury_job
UPDATE lufy.jobs SET status = 'dead', finished_at = now(), lease_until = NULL,
       last_error = coalesce(%(error)s, last_error)
WHERE actor = %(actor)s AND job_key = %(job_key)s AND status <> 'done';

-- name: note_enqueued
UPDATE lufy.jobs SET redis_queue = %(redis_queue)s, redis_message_id = %(redis_message_id)s,
       enqueued_at = now()
WHERE actor = %(actor)s AND job_key = %(job_key)s;

-- name: record_job
-- In the reactor's checkpoint transaction: a job recorded twice (a replayed event) is one job.
INSERT INTO lufy.jobs (actor, job_key, queue, payload, source, global_position, correlation_id,
                       causation_id)
SELECT * FROM unnest(%(actors)s::text[], %(keys)s::text[], %(queues)s::text[],
                     %(payloads)s::jsonb[], %(sources)s::text[], %(positions)s::bigint[],
                     %(correlation_ids)s::text[], %(causation_ids)s::text[])
ON CONFLICT (actor, job_key) DO NOTHING
RETURNING actor, job_key, queue, payload::text, correlation_id, causation_id;

-- name: record_one_job
INSERT INTO lufy.jobs (actor, job_key, queue, payload, source, correlation_id, causation_id)
VALUES (%(actor)s, %(job_key)s, %(queue)s, %(payload)s, %(source)s, %(correlation_id)s,
        %(causation_id)s)
ON CONFLICT (actor, job_key) DO NOTHING
RETURNING actor, job_key, queue, payload::text, correlation_id, causation_id;

-- name: stale_jobs
-- Unfinished jobs whose message may have vanished: never enqueued, or enqueued a while ago, or
-- running under an expired lease. The sweeper checks Redis before re-enqueueing.
SELECT actor, job_key, queue, payload::text, correlation_id, causation_id, status,
       redis_queue, redis_message_id
FROM lufy.jobs
WHERE status IN ('pending', 'retrying', 'running')
  AND created_at < now() - make_interval(secs => %(grace_seconds)s)
  AND (enqueued_at IS NULL OR enqueued_at < now() - make_interval(secs => %(grace_seconds)s))
  AND (status <> 'running' OR lease_until < now())
ORDER BY created_at
LIMIT %(limit)s;

-- name: unfinished_of_actor
SELECT count(*) FROM lufy.jobs
WHERE actor = %(actor)s AND status IN ('pending', 'running', 'retrying');

-- name: list_jobs
SELECT actor, job_key, queue, status, attempts, source, correlation_id, last_error, created_at,
       finished_at
FROM lufy.jobs
WHERE (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY created_at DESC
LIMIT %(limit)s;

-- name: job_counts
SELECT queue, status, count(*) FROM lufy.jobs GROUP BY queue, status ORDER BY queue, status;

-- name: revive_dead
-- An operator retries dead jobs: back to pending with a fresh retry budget.
UPDATE lufy.jobs SET status = 'pending', attempts = 0, finished_at = NULL, enqueued_at = NULL
WHERE status = 'dead'
  AND (%(actor)s::text IS NULL OR actor = %(actor)s)
  AND (%(job_key)s::text IS NULL OR job_key = %(job_key)s)
RETURNING actor, job_key, queue, payload::text, correlation_id, causation_id;
