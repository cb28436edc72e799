-- name: append_to_stream
SELECT global_position, stream_version, transaction_id::text::bigint, replayed
FROM lufy.append_to_stream(%(stream_type)s, %(stream_id)s, %(expected)s, %(event_ids)s,
                           %(types)s, %(schema_versions)s, %(data)s::jsonb[], %(metadata)s::jsonb[],
                           %(occurred_at)s::timestamptz[]);

-- name: existing_event_ids
SELECT event_id FROM lufy.events WHERE event_id = ANY(%(event_ids)s);

-- name: copy_events
COPY lufy.events (event_id, stream_type, stream_id, type, schema_version, data, metadata,
                  occurred_at)
FROM STDIN;

-- name: notify
SELECT pg_notify('lufy_events', '');

-- name: read_stream_forward
SELECT global_position, transaction_id::text::bigint, event_id, stream_type, stream_id,
       stream_version, type, schema_version, data::text, metadata::text, occurred_at, recorded_at
FROM lufy.events
WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s
  AND stream_version >= %(from_version)s
ORDER BY stream_version
LIMIT %(limit)s;

-- name: read_stream_backward
SELECT global_position, transaction_id::text::bigint, event_id, stream_type, stream_id,
       stream_version, type, schema_version, data::text, metadata::text, occurred_at, recorded_at
FROM lufy.events
WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s
  AND stream_version <= %(from_version)s
ORDER BY stream_version DESC
LIMIT %(limit)s;

-- name: stream_version
SELECT version FROM lufy.streams WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s;

-- name: read_all
-- Gap-free: only transactions below the snapshot's xmin are certainly finished, so only their
-- events are handed out; the barrier is returned so an empty page can still advance the reader.
WITH barrier AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT e.global_position, e.transaction_id::text::bigint, e.event_id, e.stream_type, e.stream_id,
       e.stream_version, e.type, e.schema_version, e.data::text, e.metadata::text,
       e.occurred_at, e.recorded_at, barrier.xmin::text::bigint
FROM barrier
LEFT JOIN LATERAL (
    SELECT * FROM lufy.events ev
    WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
      AND ev.transaction_id < barrier.xmin
    ORDER BY ev.transaction_id, ev.global_position
    LIMIT %(limit)s
) e ON true;

-- name: read_all_types
WITH barrier AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT e.global_position, e.transaction_id::text::bigint, e.event_id, e.stream_type, e.stream_id,
       e.stream_version, e.type, e.schema_version, e.data::text, e.metadata::text,
       e.occurred_at, e.recorded_at, barrier.xmin::text::bigint
FROM barrier
LEFT JOIN LATERAL (
    SELECT * FROM lufy.events ev
    WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
      AND ev.transaction_id < barrier.xmin
      AND ev.type = ANY(%(types)s)
    ORDER BY ev.transaction_id, ev.global_position
    LIMIT %(limit)s
) e ON true;

-- name: head
SELECT coalesce(max(global_position), 0) FROM lufy.events;

-- name: barrier_holder
-- The oldest transaction that holds the read barrier back, if any: backend, age, state, query.
SELECT a.pid, a.usename::text, a.application_name, a.state,
       extract(epoch FROM now() - a.xact_start)::float8 AS seconds, left(a.query, 200)
FROM pg_stat_activity a
WHERE a.backend_xid IS NOT NULL
  AND a.backend_xid::text::bigint = (pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296)
LIMIT 1;

-- name: barrier
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
