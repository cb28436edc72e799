-- Listener ids sealed per person and per month (src/lufy/privacy/listeners.py). Run as system.

-- name: data_keys
SELECT k.subject_id, k.wrapped_key, k.wrapped_by, m.secret
FROM lufy.data_keys k LEFT JOIN lufy.data_key_master m ON m.id = 1
WHERE k.subject_id = ANY(%(subjects)s::uuid[]);

-- name: erased_people
SELECT id FROM lufy.users WHERE id = ANY(%(ids)s::uuid[]) AND erased_at IS NOT NULL;

-- Concurrent first uses of a month: either unique index may see the other's row first.
-- name: register_month
INSERT INTO lufy.analytics_months (month, subject_id) VALUES (%(month)s, %(subject)s)
ON CONFLICT DO NOTHING;

-- Locked so that retention cannot destroy the month between this check and the key's creation.
-- name: month_destroyed
SELECT destroyed_at IS NOT NULL FROM lufy.analytics_months WHERE month = %(month)s FOR SHARE;

-- name: expire_months
UPDATE lufy.analytics_months SET destroyed_at = now()
WHERE month < %(before)s AND destroyed_at IS NULL
RETURNING month, subject_id;

-- name: delete_keys
DELETE FROM lufy.data_keys WHERE subject_id = ANY(%(subjects)s::uuid[]);

-- name: hmac_key
SELECT hmac_key FROM lufy.analytics_secret;

-- Events of the log that still name their listener in clear (`lufy migrate`, reseal): analytics
-- events with a clear listener_id or anonymous_id, stream grants with a user id.
-- name: any_clear_listeners
SELECT EXISTS (
    SELECT 1 FROM lufy.events
    WHERE transaction_id >= %(since)s::xid8 AND (
        (type = ANY(%(types)s::text[]) AND (
            left(data->>'listener_id', 10) <> 'sealed:v1:'
            OR left(data->>'anonymous_id', 10) <> 'sealed:v1:'))
        OR (type = 'catalog.stream_authorized'
            AND (data->>'listener_id' IS NOT NULL OR metadata->>'actor_id' IS NOT NULL))));

-- name: clear_listeners
SELECT global_position, type, occurred_at, data, metadata FROM lufy.events
WHERE transaction_id >= %(since)s::xid8 AND (
    (type = ANY(%(types)s::text[]) AND (
        left(data->>'listener_id', 10) <> 'sealed:v1:'
        OR left(data->>'anonymous_id', 10) <> 'sealed:v1:'))
    OR (type = 'catalog.stream_authorized'
        AND (data->>'listener_id' IS NOT NULL OR metadata->>'actor_id' IS NOT NULL)))
ORDER BY global_position;

-- name: rewrite_events
UPDATE lufy.events e SET data = v.data, metadata = v.metadata
FROM unnest(%(positions)s::bigint[], %(data)s::jsonb[], %(metadata)s::jsonb[])
    AS v(position, data, metadata)
WHERE e.global_position = v.position;

-- name: record_expiry
SELECT * FROM lufy.append_to_stream('operations', 'analytics_retention', -2,
    ARRAY[%(event_id)s]::uuid[], ARRAY[%(type)s], ARRAY[%(version)s]::int[],
    ARRAY[%(data)s::jsonb], ARRAY['{}'::jsonb], ARRAY[now()]);
