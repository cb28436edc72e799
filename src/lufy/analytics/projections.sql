-- name: lock_sessions
SELECT session_id, track_id, artist_id, listener_key, start_event_at, first_event_at,
       listened_ms, completed, skipped, source, country, device, weight
FROM playback_sessions WHERE session_id = ANY(%(ids)s)
FOR UPDATE;

-- name: upsert_sessions
INSERT INTO playback_sessions AS s (session_id, track_id, artist_id, listener_key, start_event_at,
                                    first_event_at, listened_ms, completed, skipped, source,
                                    country, device, weight)
SELECT * FROM unnest(%(session_id)s::text[], %(track_id)s::uuid[], %(artist_id)s::uuid[],
                     %(listener_key)s::text[], %(start_event_at)s::timestamptz[],
                     %(first_event_at)s::timestamptz[], %(listened_ms)s::bigint[],
                     %(completed)s::boolean[], %(skipped)s::boolean[], %(source)s::text[],
                     %(country)s::text[], %(device)s::text[], %(weight)s::float8[])
ON CONFLICT (session_id) DO UPDATE SET
    track_id = excluded.track_id, artist_id = excluded.artist_id,
    listener_key = excluded.listener_key, start_event_at = excluded.start_event_at,
    first_event_at = excluded.first_event_at, listened_ms = excluded.listened_ms,
    completed = excluded.completed, skipped = excluded.skipped, source = excluded.source,
    country = excluded.country, device = excluded.device, weight = excluded.weight;

-- name: add_track_rollup
INSERT INTO track_rollup_15m AS r (track_id, bucket, artist_id, streams, listen_ms, starts,
                                   completions, skips, likes, follows)
SELECT * FROM unnest(%(track_id)s::uuid[], %(bucket)s::timestamptz[], %(artist_id)s::uuid[],
                     %(streams)s::float8[], %(listen_ms)s::float8[], %(starts)s::float8[],
                     %(completions)s::float8[], %(skips)s::float8[], %(likes)s::float8[],
                     %(follows)s::float8[])
ON CONFLICT (track_id, bucket) DO UPDATE SET
    streams = r.streams + excluded.streams, listen_ms = r.listen_ms + excluded.listen_ms,
    starts = r.starts + excluded.starts, completions = r.completions + excluded.completions,
    skips = r.skips + excluded.skips, likes = r.likes + excluded.likes,
    follows = r.follows + excluded.follows;

-- name: add_artist_rollup
INSERT INTO artist_rollup_15m AS r (artist_id, bucket, follows)
SELECT * FROM unnest(%(artist_id)s::uuid[], %(bucket)s::timestamptz[], %(follows)s::float8[])
ON CONFLICT (artist_id, bucket) DO UPDATE SET follows = r.follows + excluded.follows;

-- name: insert_engagement
INSERT INTO engagement_events (event_id, kind, track_id, artist_id, occurred_at, delta)
SELECT * FROM unnest(%(event_id)s::uuid[], %(kind)s::text[], %(track_id)s::uuid[],
                     %(artist_id)s::uuid[], %(occurred_at)s::timestamptz[], %(delta)s::float8[])
ON CONFLICT (event_id) DO NOTHING;
