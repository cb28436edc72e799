-- `lufy events export` (src/lufy/analytics/export.py): one repeatable-read, read-only
-- transaction on the read URL.

-- name: safe_position
SELECT analytics.safe_position()::text::bigint, (SELECT pg_is_in_recovery());

-- name: events
SELECT transaction_id::text::bigint, global_position, event_id::text, type, stream_type,
       occurred_at, recorded_at, data::text, weight
FROM analytics.events
WHERE transaction_id > %(since)s::text::xid8 AND transaction_id < %(upto)s::text::xid8
ORDER BY transaction_id, global_position;
