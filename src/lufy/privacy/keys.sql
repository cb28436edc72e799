-- Data keys: sealing (src/lufy/privacy/sealing.py), run as system in the caller's transaction,
-- and master key rotation (src/lufy/privacy/rotation.py), run as system under the migration lock.
-- Schema-qualified names: rebuilds point the search_path at the shadow schema.

-- name: as_system
-- The rest of the transaction as `system` (the key tables are system-only under RLS).
SELECT set_config('app.current_role', 'system', true);

-- name: data_key
SELECT k.wrapped_key, k.wrapped_by, m.secret FROM lufy.data_keys k
LEFT JOIN lufy.data_key_master m ON m.id = 1 WHERE k.subject_id = %s;

-- name: insert_key
INSERT INTO lufy.data_keys (subject_id, wrapped_key, wrapped_by, secret_id)
VALUES (%s, %s, %s, %s) ON CONFLICT (subject_id) DO NOTHING;

-- name: delete_key
DELETE FROM lufy.data_keys WHERE subject_id = %s;

-- name: keys_to_rewrap
SELECT subject_id, wrapped_key, wrapped_by FROM lufy.data_keys
WHERE wrapped_by = 'database' OR secret_id IS DISTINCT FROM %(secret_id)s
ORDER BY subject_id FOR UPDATE;

-- name: master
SELECT secret FROM lufy.data_key_master WHERE id = 1;

-- name: rewrap
UPDATE lufy.data_keys k SET wrapped_key = v.wrapped_key, wrapped_by = 'secret',
    secret_id = %(secret_id)s
FROM unnest(%(subjects)s::uuid[], %(wrapped)s::bytea[]) AS v(subject_id, wrapped_key)
WHERE k.subject_id = v.subject_id;

-- name: record
SELECT * FROM lufy.append_to_stream('operations', 'data_keys', -2,
    ARRAY[%(event_id)s]::uuid[], ARRAY[%(type)s], ARRAY[%(version)s]::int[],
    ARRAY[%(data)s::jsonb], ARRAY['{}'::jsonb], ARRAY[now()]);
