-- name: lock_sessions
-- Columns in the order of SessionState's fields.
SELECT session_id, track_id, artist_id, listener_key, start_event_at, first_event_at,
       listened_ms, completed, skipped, source, country, device, weight, grant_id, signed_in,
       imported, grant_deadline, verified
FROM playback_sessions WHERE session_id = ANY(%(ids)b)
FOR UPDATE;

-- name: upsert_sessions
INSERT INTO playback_sessions AS s (session_id, track_id, artist_id, listener_key, start_event_at,
                                    first_event_at, listened_ms, completed, skipped, source,
                                    country, device, weight, grant_id, signed_in, imported,
                                    grant_deadline, verified)
SELECT * FROM unnest(%(session_id)b::text[], %(track_id)b::uuid[], %(artist_id)b::uuid[],
                     %(listener_key)b::text[], %(start_event_at)b::timestamptz[],
                     %(first_event_at)b::timestamptz[], %(listened_ms)b::bigint[],
                     %(completed)b::boolean[], %(skipped)b::boolean[], %(source)b::text[],
                     %(country)b::text[], %(device)b::text[], %(weight)b::float8[],
                     %(grant_id)b::uuid[], %(signed_in)b::boolean[], %(imported)b::boolean[],
                     %(grant_deadline)b::timestamptz[], %(verified)b::boolean[])
ON CONFLICT (session_id) DO UPDATE SET
    track_id = excluded.track_id, artist_id = excluded.artist_id,
    listener_key = excluded.listener_key, start_event_at = excluded.start_event_at,
    first_event_at = excluded.first_event_at, listened_ms = excluded.listened_ms,
    completed = excluded.completed, skipped = excluded.skipped, source = excluded.source,
    country = excluded.country, device = excluded.device, weight = excluded.weight,
    grant_id = excluded.grant_id, signed_in = excluded.signed_in, imported = excluded.imported,
    grant_deadline = excluded.grant_deadline, verified = excluded.verified;

-- name: hmac_key
SELECT hmac_key FROM lufy.analytics_secret;

-- name: insert_grants
INSERT INTO stream_grants (grant_id, track_id, listener_key, granted_at)
SELECT * FROM unnest(%(grant_id)b::uuid[], %(track_id)b::uuid[], %(listener_key)b::text[],
                     %(granted_at)b::timestamptz[])
ON CONFLICT (grant_id) DO NOTHING;

-- name: lock_grants
SELECT grant_id, track_id, listener_key, granted_at, sessions
FROM stream_grants WHERE grant_id = ANY(%(ids)s::uuid[])
ORDER BY grant_id
FOR UPDATE;

-- name: claim_grant
UPDATE stream_grants SET sessions = %(sessions)s::text[] WHERE grant_id = %(grant_id)s::uuid;

-- name: add_track_rollup
INSERT INTO track_rollup_15m AS r (track_id, bucket, artist_id, streams, listen_ms, starts,
                                   completions, skips, likes, follows)
SELECT * FROM unnest(%(track_id)b::uuid[], %(bucket)b::timestamptz[], %(artist_id)b::uuid[],
                     %(streams)b::float8[], %(listen_ms)b::float8[], %(starts)b::float8[],
                     %(completions)b::float8[], %(skips)b::float8[], %(likes)b::float8[],
                     %(follows)b::float8[])
ON CONFLICT (track_id, bucket) DO UPDATE SET
    streams = r.streams + excluded.streams, listen_ms = r.listen_ms + excluded.listen_ms,
    starts = r.starts + excluded.starts, completions = r.completions + excluded.completions,
    skips = r.skips + excluded.skips, likes = r.likes + excluded.likes,
    follows = r.follows + excluded.follows;

-- name: add_artist_rollup
INSERT INTO artist_rollup_15m AS r (artist_id, bucket, follows)
SELECT * FROM unnest(%(artist_id)b::uuid[], %(bucket)b::timestamptz[], %(follows)b::float8[])
ON CONFLICT (artist_id, bucket) DO UPDATE SET follows = r.follows + excluded.follows;

-- name: insert_engagement
INSERT INTO engagement_events (event_id, kind, track_id, artist_id, occurred_at, delta)
SELECT * FROM unnest(%(event_id)b::uuid[], %(kind)b::text[], %(track_id)b::uuid[],
                     %(artist_id)b::uuid[], %(occurred_at)b::timestamptz[], %(delta)b::float8[])
ON CONFLICT (event_id) DO NOTHING;

-- name: mark_days
-- Days for the incremental refresh of analytics.track_daily / artist_daily. Written last in a
-- batch: a refresh holding a day's mark makes this wait, then mark the day again.
INSERT INTO analytics_dirty_days AS m (day)
SELECT unnest(%(days)s::date[])
ON CONFLICT (day) DO UPDATE SET changes = m.changes + 1;
