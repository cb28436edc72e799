-- Bitmaps of listener ids per block of time (lufy/analytics/listeners.py). Rows are named by
-- (scope, owner, dim, key, level, bucket, weight) arrays, numbered by WITH ORDINALITY.

-- name: listener_ids
SELECT listener_key, id FROM listener_ids WHERE listener_key = ANY(%(keys)s::text[]);

-- name: assign_listener_ids
-- The projection is the only writer of its tables: max + n is free.
INSERT INTO listener_ids (listener_key, id)
SELECT k, (SELECT coalesce(max(id), 0) FROM listener_ids) + n
FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS u(k, n)
RETURNING listener_key, id;

-- name: lock_rows
SELECT d.n, b.streams, b.bitmap
FROM unnest(%(scope)s::text[], %(owner)s::uuid[], %(dim)s::text[], %(key)s::text[],
            %(level)s::text[], %(bucket)s::timestamptz[], %(weight)s::float8[])
     WITH ORDINALITY AS d(scope, owner, dim, key, level, bucket, weight, n)
JOIN listener_bitmaps b
  ON b.scope = d.scope AND b.owner = d.owner AND b.dim = d.dim AND b.level = d.level
 AND b.bucket = d.bucket AND b.key = d.key AND b.weight = d.weight
FOR UPDATE OF b;

-- name: still_there
-- Of (row, listener) pairs whose session left the row: the numbers of those whose listener still
-- has a stream session in the row's block (by the listener's own sessions: an index probe).
SELECT d.n
FROM unnest(%(scope)s::text[], %(owner)s::uuid[], %(dim)s::text[], %(key)s::text[],
            %(level)s::text[], %(bucket)s::timestamptz[], %(weight)s::float8[],
            %(listener)s::text[])
     WITH ORDINALITY AS d(scope, owner, dim, key, level, bucket, weight, listener, n)
WHERE EXISTS (
    SELECT 1 FROM playback_sessions s
    WHERE s.listener_key = d.listener AND s.is_stream AND s.weight = d.weight
      AND s.started_at >= d.bucket
      AND s.started_at < d.bucket + CASE d.level WHEN 'q' THEN interval '15 minutes'
                                                 WHEN 'h' THEN interval '1 hour'
                                                 WHEN 's' THEN interval '6 hours'
                                                 ELSE interval '1 day' END
      AND (d.scope = 'p' OR (d.scope = 't' AND s.track_id = d.owner)
           OR (d.scope = 'a' AND s.artist_id = d.owner))
      AND (d.dim = '' OR d.key = coalesce(CASE d.dim WHEN 'country' THEN s.country
                                                     WHEN 'device' THEN s.device
                                                     ELSE s.source END, 'unknown')));

-- name: upsert_rows
INSERT INTO listener_bitmaps AS b (scope, owner, dim, key, level, bucket, weight, artist_id,
                                   streams, listeners, bitmap)
SELECT * FROM unnest(%(scope)s::text[], %(owner)s::uuid[], %(dim)s::text[], %(key)s::text[],
                     %(level)s::text[], %(bucket)s::timestamptz[], %(weight)s::float8[],
                     %(artist_id)s::uuid[], %(streams)s::float8[], %(listeners)s::int[],
                     %(bitmap)s::bytea[])
ON CONFLICT (scope, owner, dim, level, bucket, key, weight) DO UPDATE SET
    artist_id = excluded.artist_id, streams = excluded.streams,
    listeners = excluded.listeners, bitmap = excluded.bitmap;

-- name: delete_rows
DELETE FROM listener_bitmaps b
USING unnest(%(scope)s::text[], %(owner)s::uuid[], %(dim)s::text[], %(key)s::text[],
             %(level)s::text[], %(bucket)s::timestamptz[], %(weight)s::float8[])
      AS d(scope, owner, dim, key, level, bucket, weight)
WHERE b.scope = d.scope AND b.owner = d.owner AND b.dim = d.dim AND b.level = d.level
  AND b.bucket = d.bucket AND b.key = d.key AND b.weight = d.weight;

-- name: read_rows
-- Under the caller's RLS: an artist reads rows of their own tracks and their own artist rows.
-- The blocks of each level as an array of epochs: index probes by (level, bucket = ANY(...)),
-- never a scan of every row of the owner; or, when they are every block of the level from the
-- first to the last (an hourly chart), as that range: one index range scan. Each row's version (ctid:xmin) comes with it, and its
-- bytes unless the reader already holds that version (`known`, lufy/analytics/bitmap_cache.py).
SELECT b.owner, b.key, b.level, extract(epoch FROM b.bucket)::int8, b.weight, b.streams,
       b.listeners, v.version, b.artist_id,
       CASE WHEN v.version = ANY(%(known)s::text[]) THEN NULL ELSE b.bitmap END
FROM listener_bitmaps b
CROSS JOIN LATERAL (SELECT b.ctid::text || ':' || b.xmin::text AS version) v
WHERE b.scope = %(scope)s AND b.dim = %(dim)s
  AND (%(owners)s::uuid[] IS NULL OR b.owner = ANY(%(owners)s::uuid[]))
  AND (%(artist)s::uuid IS NULL OR b.artist_id = %(artist)s::uuid)
  AND ((b.level = 'q' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(q)s::int8[]) e))
                          OR b.bucket BETWEEN to_timestamp(%(q_lo)s::int8) AND to_timestamp(%(q_hi)s::int8)))
       OR (b.level = 'h' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(h)s::int8[]) e))
                          OR b.bucket BETWEEN to_timestamp(%(h_lo)s::int8) AND to_timestamp(%(h_hi)s::int8)))
       OR (b.level = 's' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(s)s::int8[]) e))
                          OR b.bucket BETWEEN to_timestamp(%(s_lo)s::int8) AND to_timestamp(%(s_hi)s::int8)))
       OR (b.level = 'd' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(d)s::int8[]) e))
                          OR b.bucket BETWEEN to_timestamp(%(d_lo)s::int8) AND to_timestamp(%(d_hi)s::int8))));

-- name: edge_listeners
-- Listener ids and weights of the stream sessions in the unaligned edges of a range.
SELECT s.track_id, l.id, s.weight,
       coalesce(CASE %(dim)s WHEN 'country' THEN s.country WHEN 'device' THEN s.device
                             WHEN 'source' THEN s.source END, 'unknown') AS key,
       width_bucket(s.started_at, %(bounds)s::timestamptz[]) AS b
FROM playback_sessions s
JOIN listener_ids l ON l.listener_key = s.listener_key
WHERE s.is_stream
  AND ((s.started_at >= %(from)s AND s.started_at < %(mid_from)s)
       OR (s.started_at >= %(mid_to)s AND s.started_at < %(to)s))
  AND (%(artist)s::uuid IS NULL OR s.artist_id = %(artist)s::uuid)
  AND (%(track)s::uuid IS NULL OR s.track_id = %(track)s::uuid);
