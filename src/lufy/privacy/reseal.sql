-- The one-time sealing of personal fields in events written before privacy sealing
-- (src/lufy/privacy/reseal.py), run as system under the migration lock, in one transaction.
-- Also uses keys.sql (as_system, master).

-- name: pending
-- Events with a personal field still in clear, or a password hash (jsonb `?` is an operator).
SELECT global_position, type, data FROM lufy.events
WHERE type = ANY(%(types)s) AND transaction_id >= %(since)s::xid8
  AND data->>'user_id' IS NOT NULL AND (
    EXISTS (SELECT 1 FROM unnest(%(fields)s::text[]) f
            WHERE data->>f IS NOT NULL AND left(data->>f, 10) <> 'sealed:v1:')
    OR (data->>'password_hash') IS NOT NULL
)
ORDER BY global_position;

-- name: pending_jobs
-- E-mail jobs recorded before sealing carry the address and name in clear; the job key is the
-- id of the event that implied it, which names the person.
SELECT j.job_key, j.payload, e.data->>'user_id' FROM lufy.jobs j
JOIN lufy.events e ON e.event_id::text = j.job_key
WHERE j.actor = 'send_email' AND j.created_at >= %(since_time)s - interval '1 day'
  AND e.data->>'user_id' IS NOT NULL AND (
    left(j.payload->>'to', 10) <> 'sealed:v1:'
    OR left(j.payload->>'display_name', 10) <> 'sealed:v1:'
)
ORDER BY j.job_key;

-- name: wrapped_key
SELECT wrapped_key, wrapped_by FROM lufy.data_keys WHERE subject_id = %s;

-- name: erased
SELECT erased_at IS NOT NULL FROM lufy.users WHERE id = %s;

-- name: store_key
INSERT INTO lufy.data_keys (subject_id, wrapped_key, wrapped_by, secret_id)
VALUES (%s, %s, %s, %s);

-- name: sync_credentials
-- Password changes made by processes of the previous version during a rolling deploy went to
-- users.password_hash only: the newer of the two wins.
INSERT INTO lufy.credentials (user_id, password_hash, changed_at)
SELECT u.id, u.password_hash, u.password_changed_at FROM lufy.users u
LEFT JOIN lufy.credentials c ON c.user_id = u.id
WHERE u.password_hash IS NOT NULL AND u.password_changed_at > coalesce(c.changed_at, '-infinity')
ON CONFLICT (user_id) DO UPDATE
SET password_hash = excluded.password_hash, changed_at = excluded.changed_at;

-- name: sync_credential_removals
-- The same for removals.
DELETE FROM lufy.credentials c USING lufy.users u
WHERE u.id = c.user_id AND u.password_hash IS NULL AND u.password_changed_at > c.changed_at;

-- name: progress
-- Read barrier now, where the last check stopped, when it ran, where the last check of
-- listener ids stopped.
SELECT lufy.read_barrier()::text, p.checked_below::text, p.checked_at,
       p.listeners_checked_below::text
FROM (SELECT 1) one LEFT JOIN lufy.privacy_sealing p ON p.id = 1;

-- name: advance
INSERT INTO lufy.privacy_sealing (id, checked_below, checked_at, listeners_checked_below)
VALUES (1, %s::xid8, now(), %s::xid8)
ON CONFLICT (id) DO UPDATE SET checked_below = excluded.checked_below,
    checked_at = excluded.checked_at,
    listeners_checked_below = excluded.listeners_checked_below;

-- name: disable_append_only
ALTER TABLE lufy.events DISABLE TRIGGER events_no_update_delete;

-- name: enable_append_only
ALTER TABLE lufy.events ENABLE TRIGGER events_no_update_delete;

-- name: seal_job
UPDATE lufy.jobs SET payload = %s::jsonb WHERE actor = 'send_email' AND job_key = %s;

-- name: seal_event
UPDATE lufy.events SET data = %s::jsonb WHERE global_position = %s;

-- name: record
SELECT * FROM lufy.append_to_stream('operations', 'privacy_sealing', -2,
    ARRAY[%s]::uuid[], ARRAY[%s], ARRAY[%s]::int[], ARRAY[%s::jsonb],
    ARRAY['{}'::jsonb], ARRAY[now()]);
