-- Master key rotation (src/lufy/privacy/rotation.py). Run as system under the migration lock.

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
