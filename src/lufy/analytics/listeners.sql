-- Bitmaps of listener ids per block of time (lufy/analytics/listeners.py). The maintenance
-- statements work on the analytics projection's work table of changed sessions
-- (projections.sql, `analytics_batch_changes`) and their own temporary tables.

-- name: settings
-- For the rest of the range's transaction: the grouping of a page's bitmap rows (an array of
-- ids per row) stays in memory instead of spilling to disk; and no JIT compilation: the
-- per-row probes of `batch_rows` make its estimated cost high enough to trigger JIT, which
-- then spent seconds compiling per range (measured 3.4 s of a 5.3 s statement) to save
-- nothing (most ranges have no side leaving a row).
SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true);

-- name: batch_sides
-- The changed sessions' sides that may change bitmap rows: before (-1, when it was a stream)
-- and after (+1, when it is one). A session whose rows cannot have changed (a stream before
-- and after, same track, artist, quarter-hour, weight and dimensions) has none. Each with its
-- listener's dense id (`id`), NULL for a listener who has none yet (`entering_sides` assigns
-- them): `listener_ids` is joined once per range (a hash of the whole table, as large as the
-- listeners: joining it again for the entering sides cost as much again).
CREATE TEMP TABLE analytics_bitmap_sides ON COMMIT DROP AS
-- (`c` inlined in both branches: each filter then stops at `is_stream` or `was_stream`, and the
-- comparison of rows is only made for a session that was a stream; materialized, every changed
-- session had it made and was copied, about 40 of a page's 120 ms.)
WITH c AS NOT MATERIALIZED (
    SELECT c.*, c.verified AND c.listened_ms >= 30000 AS is_stream,
           c.existed AND c.o_verified AND c.o_listened_ms >= 30000 AS was_stream,
           (c.track_id, c.artist_id, c.weight, c.country, c.device, c.source,
            date_bin('15 minutes', coalesce(c.start_event_at, c.first_event_at),
                     timestamptz '1970-01-01 00:00:00+00'))
           IS NOT DISTINCT FROM
           (c.o_track_id, c.o_artist_id, c.o_weight, c.o_country, c.o_device, c.o_source,
            date_bin('15 minutes', coalesce(c.o_start_event_at, c.o_first_event_at),
                     timestamptz '1970-01-01 00:00:00+00')) AS same_rows
    FROM analytics_batch_changes c
)
SELECT x.*, l.id
FROM (
    SELECT c.listener_key, 1 AS sign, c.track_id, c.artist_id,
           coalesce(c.start_event_at, c.first_event_at) AS at, c.weight, c.country, c.device,
           c.source
    FROM c WHERE c.is_stream AND NOT (c.was_stream AND c.same_rows)
    UNION ALL
    SELECT c.listener_key, -1, c.o_track_id, c.o_artist_id,
           coalesce(c.o_start_event_at, c.o_first_event_at), c.o_weight, c.o_country, c.o_device,
           c.o_source
    FROM c WHERE c.was_stream AND NOT (c.is_stream AND c.same_rows)
) x
LEFT JOIN listener_ids l ON l.listener_key = x.listener_key;

-- name: entering_sides
-- (Track and artist as their 16 bytes and the bucket as epoch seconds: Python groups by them,
-- and decoding a page's sides as UUIDs and datetimes was most of the time the applying
-- connection waited for Python.)
-- First, dense ids for the listeners of the sides who have none (`batch_sides`), assigned on
-- first sight in key order: the projection is the only writer of its tables (live or shadow,
-- and a rebuild's swap copies ids as they are), so max + n is free. (A listener without an id
-- has only sides entering rows.) Then the sides entering rows, with their listener's dense id
-- and 15-minute UTC bucket, and a missing country, device or source as 'unknown' (as the SQL's
-- coalesce(value, 'unknown') everywhere). `apply_batch` groups them into the quarter-hour rows
-- they add to (9 rows per side: its track; its artist and the platform, each also by country,
-- device and source) in Python, where a row's ids become a bitmap at once: grouping them here
-- (an array of ids per row, nine rows per side) was the most expensive statement of a
-- rebuild's page.
WITH assigned AS (
    INSERT INTO listener_ids (listener_key, id)
    SELECT m.k,
           (SELECT coalesce(max(id), 0) FROM listener_ids) + row_number() OVER (ORDER BY m.k)
    FROM (SELECT DISTINCT s.listener_key COLLATE "C" AS k
          FROM analytics_bitmap_sides s
          WHERE s.id IS NULL) m
    RETURNING listener_key, id
)
SELECT coalesce(s.id, a.id), uuid_send(s.track_id), uuid_send(s.artist_id),
       date_part('epoch', date_bin('15 minutes', s.at, timestamptz '1970-01-01 00:00:00+00'))
           ::int8,
       s.weight::float8, coalesce(s.country, 'unknown'), coalesce(s.device, 'unknown'),
       coalesce(s.source, 'unknown')
FROM analytics_bitmap_sides s
LEFT JOIN assigned a ON s.id IS NULL AND a.listener_key = s.listener_key
WHERE s.sign > 0;

-- name: batch_adds
-- The quarter-hour rows the sides entering rows add to, numbered (`qn`), with the streams they
-- add, as grouped by `apply_batch` (the ids each adds stay in Python, by number). The hours,
-- six hours and days they also enter are derived from these rows in `batch_add_rows` (a
-- block's ids are the union of its quarters' ids), not by expanding every side into its 36
-- rows.
CREATE TEMP TABLE analytics_bitmap_adds ON COMMIT DROP AS
SELECT a.qn, a.scope, a.owner, a.dim, a.key, to_timestamp(a.bucket) AS bucket, a.weight,
       a.artist_id, a.streams
FROM unnest(%(qn)b::int8[], %(scope)b::text[], %(owner)b::uuid[], %(dim)b::text[],
            %(key)b::text[], %(bucket)b::int8[], %(weight)b::float8[], %(artist_id)b::uuid[],
            %(streams)b::float8[])
    AS a(qn, scope, owner, dim, key, bucket, weight, artist_id, streams);

-- name: batch_add_rows
-- Every row the sides entering rows add to: the quarter-hour rows of `batch_adds` (`qn`) and
-- the hours, six hours and days they lie in, with the quarter-hour rows whose ids enter them
-- (`children`); and, for the rows without dimension, the hour from half past they lie in
-- (level 'o', as `session_block_keys`: none from 23:30).
CREATE TEMP TABLE analytics_bitmap_add_rows ON COMMIT DROP AS
SELECT a.scope, a.owner, a.dim, a.key, 'q' AS level, a.bucket, a.weight, a.artist_id,
       a.streams, a.qn, NULL::int8[] AS children
FROM analytics_bitmap_adds a
UNION ALL
SELECT a.scope, a.owner, a.dim, a.key, l.level, date_bin(l.width, a.bucket, l.origin), a.weight,
       a.artist_id, sum(a.streams), NULL, array_agg(a.qn)
FROM analytics_bitmap_adds a
CROSS JOIN (VALUES ('o', interval '1 hour', timestamptz '1970-01-01 00:30:00+00'),
                   ('h', interval '1 hour', timestamptz '1970-01-01 00:00:00+00'),
                   ('s', interval '6 hours', timestamptz '1970-01-01 00:00:00+00'),
                   ('d', interval '1 day', timestamptz '1970-01-01 00:00:00+00'))
    AS l(level, width, origin)
WHERE l.level <> 'o'
   OR (a.dim = ''
       AND a.bucket - date_bin('1 day', a.bucket, timestamptz '1970-01-01 00:30:00+00')
           < interval '23 hours')
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

-- name: any_leaving
SELECT EXISTS (SELECT 1 FROM analytics_bitmap_sides WHERE sign < 0);

-- name: batch_rows_adding
-- The changed rows when no side leaves a row (most ranges): those of `batch_add_rows`,
-- numbered in key order.
CREATE TEMP TABLE analytics_bitmap_rows ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY scope COLLATE "C", owner, dim COLLATE "C", level COLLATE "C",
                                   bucket, key COLLATE "C", weight) AS n,
       scope, owner, dim, key, level, bucket, weight, artist_id, streams, qn, children,
       '{}'::int4[] AS removed
FROM analytics_bitmap_add_rows;

-- name: ensure_listener_index
-- Before `batch_rows` probes a listener's sessions: a rebuild's shadow copy of
-- playback_sessions is filled without playback_sessions_listener_started (deferred: its upkeep
-- was about half of inserting a page's sessions, and only ranges with sides leaving a row use
-- it), so the first such range of a rebuild builds it (lufy.shadow_index, sql/0960), and it is
-- kept up from then on. A no-op for the live tables, which always have it.
SELECT lufy.shadow_index('playback_sessions', 'playback_sessions_listener_started')
WHERE (current_schemas(false))[1] = 'lufy_shadow'
  AND to_regclass('lufy_shadow.playback_sessions_listener_started') IS NULL;

-- name: batch_rows
-- The changed rows, numbered in key order: the streams to add, the quarter-hour row of
-- `batch_adds` whose ids enter it (`qn`) or, for an hour, six hours or day, the quarter-hour
-- rows whose ids enter it (`children`), and the dense ids leaving. Each side leaving rows
-- (rare: a session that moved or stopped being a stream) is expanded into its 39 rows; a
-- listener whose session left a row stays in it when one of their stream sessions is still in
-- the row's block (the sessions are written already: a session that entered the row, or the
-- same session when only its other rows changed), asked of the listener's own sessions, an
-- index probe.
CREATE TEMP TABLE analytics_bitmap_rows ON COMMIT DROP AS
WITH pairs AS (
    SELECT k.scope, k.owner, d.dim, d.key, k.level, k.bucket, s.weight::float8 AS weight,
           k.artist_id, l.id,
           NOT EXISTS (
               SELECT 1 FROM playback_sessions p
               WHERE p.listener_key = s.listener_key AND p.is_stream AND p.weight = s.weight
                 AND p.started_at >= k.bucket
                 AND p.started_at < k.bucket + CASE k.level WHEN 'q' THEN interval '15 minutes'
                                                           WHEN 'o' THEN interval '1 hour'
                                                           WHEN 'h' THEN interval '1 hour'
                                                           WHEN 's' THEN interval '6 hours'
                                                           ELSE interval '1 day' END
                 AND (k.scope = 'p' OR (k.scope = 't' AND p.track_id = k.owner)
                      OR (k.scope = 'a' AND p.artist_id = k.owner))
                 AND (d.dim = '' OR d.key = coalesce(CASE d.dim WHEN 'country' THEN p.country
                                                                WHEN 'device' THEN p.device
                                                                ELSE p.source END, 'unknown')))
           AS gone
    FROM analytics_bitmap_sides s
    JOIN listener_ids l ON l.listener_key = s.listener_key
    CROSS JOIN LATERAL session_block_keys(s.at, s.track_id, s.artist_id) AS k
    CROSS JOIN LATERAL (VALUES ('', ''), ('country', coalesce(s.country, 'unknown')),
                               ('device', coalesce(s.device, 'unknown')),
                               ('source', coalesce(s.source, 'unknown'))) AS d(dim, key)
    WHERE s.sign < 0 AND (k.scope <> 't' OR d.dim = '') AND (k.level <> 'o' OR d.dim = '')
), removals AS (
    SELECT p.scope, p.owner, p.dim, p.key, p.level, p.bucket, p.weight, p.artist_id,
           -sum(p.weight) AS streams, coalesce(array_agg(p.id) FILTER (WHERE p.gone), '{}')
           AS removed
    FROM pairs p
    GROUP BY p.scope, p.owner, p.dim, p.key, p.level, p.bucket, p.weight, p.artist_id
)
SELECT row_number() OVER (ORDER BY scope COLLATE "C", owner, dim COLLATE "C", level COLLATE "C",
                                   bucket, key COLLATE "C", weight) AS n,
       scope, owner, dim, key, level, bucket, weight,
       coalesce(a.artist_id, r.artist_id) AS artist_id,
       coalesce(a.streams, 0) + coalesce(r.streams, 0) AS streams, a.qn, a.children,
       coalesce(r.removed, '{}') AS removed
FROM analytics_bitmap_add_rows a
FULL JOIN removals r USING (scope, owner, dim, key, level, bucket, weight);

-- name: lock_rows
-- The changed rows with their stored streams and bitmap (NULL: none yet), locked, in key order.
SELECT r.n, r.streams, r.qn, r.children, r.removed, b.streams, b.bitmap
FROM analytics_bitmap_rows r
LEFT JOIN LATERAL (
    SELECT b.streams, b.bitmap FROM listener_bitmaps b
    WHERE b.scope = r.scope AND b.owner = r.owner AND b.dim = r.dim AND b.level = r.level
      AND b.bucket = r.bucket AND b.key = r.key AND b.weight = r.weight
    FOR UPDATE
) b ON true
ORDER BY r.n;

-- name: upsert_rows
-- The merged rows stored already, by number (`n` of analytics_bitmap_rows), in key order.
INSERT INTO listener_bitmaps AS b (scope, owner, dim, key, level, bucket, weight, artist_id,
                                   streams, listeners, bitmap)
SELECT r.scope, r.owner, r.dim, r.key, r.level, r.bucket, r.weight, r.artist_id, u.streams,
       u.listeners, u.bitmap
FROM unnest(%(n)b::int8[], %(streams)b::float8[], %(listeners)b::int4[], %(bitmap)b::bytea[])
     AS u(n, streams, listeners, bitmap)
JOIN analytics_bitmap_rows r ON r.n = u.n
ORDER BY u.n
ON CONFLICT (scope, owner, dim, level, bucket, key, weight) DO UPDATE SET
    artist_id = excluded.artist_id, streams = excluded.streams,
    listeners = excluded.listeners, bitmap = excluded.bitmap;

-- name: insert_rows
-- The merged rows not stored yet (`lock_rows` found none), by number, in key order: a plain
-- INSERT (one unique check each) rather than the two index searches of `upsert_rows`.
INSERT INTO listener_bitmaps (scope, owner, dim, key, level, bucket, weight, artist_id, streams,
                              listeners, bitmap)
SELECT r.scope, r.owner, r.dim, r.key, r.level, r.bucket, r.weight, r.artist_id, u.streams,
       u.listeners, u.bitmap
FROM unnest(%(n)b::int8[], %(streams)b::float8[], %(listeners)b::int4[], %(bitmap)b::bytea[])
     AS u(n, streams, listeners, bitmap)
JOIN analytics_bitmap_rows r ON r.n = u.n
ORDER BY u.n;

-- name: delete_rows
-- The rows left without listeners, by number.
DELETE FROM listener_bitmaps b
USING analytics_bitmap_rows r
WHERE r.n = ANY(%(n)b::int8[])
  AND b.scope = r.scope AND b.owner = r.owner AND b.dim = r.dim AND b.level = r.level
  AND b.bucket = r.bucket AND b.key = r.key AND b.weight = r.weight;

-- name: drop_work_tables
DROP TABLE pg_temp.analytics_bitmap_sides, pg_temp.analytics_bitmap_adds,
    pg_temp.analytics_bitmap_add_rows, pg_temp.analytics_bitmap_rows;

-- name: read_groups
-- Under the caller's RLS: an artist reads rows of their own tracks and their own artist rows.
-- The rows of some blocks, one result row per *group* whose distinct listeners are asked: a
-- bucket of the chart (`by_bucket`: its index, from the grid's uniform `step` or its bounds as
-- epochs), else an owner (a track) and key (a dimension's value), bucket -1. The blocks of each
-- level as an array of epochs: index probes by (level, bucket = ANY(...)), never a scan of
-- every row of the owner; or, when they are every block of the level from the first to the
-- last (an hourly chart), as that range: one index range scan. Per group: its rows (version
-- file:ctid:xmin, level, epoch and weight of each, as one text: the key of the group's count in
-- lufy/analytics/bitmap_cache.py), the count of its one row when alone, and the bytes of those
-- of its rows whose versions the reader does not hold (`known`), only when the group has
-- several rows or the range unaligned edges: a group of one row needs no bytes, its count is
-- stored. Hash aggregates, no sort: the rows' order in a group's text is the scan's (the same
-- rows read the same way give the same text; another order only misses the cache).
WITH days AS MATERIALIZED (
    -- The UTC days of the blocks with any session (a block lies in one UTC day): blocks of the
    -- other days are not looked up, so a 12-month range of an artist with 28 days of plays
    -- probes 28 days' blocks.
    SELECT d.bucket FROM session_blocks d
    WHERE d.scope = %(day_scope)s AND d.owner = %(day_owner)s AND d.level = 'd'
      AND d.bucket BETWEEN to_timestamp(%(day_lo)s::int8) AND to_timestamp(%(day_hi)s::int8)
), found AS MATERIALIZED (
    SELECT CASE WHEN NOT %(by_bucket)s THEN -1
                WHEN %(step)s::int8 IS NOT NULL
                THEN (date_part('epoch', b.bucket)::int8 - %(first)s::int8) / %(step)s::int8
                ELSE width_bucket(date_part('epoch', b.bucket)::int8, %(epochs)s::int8[]) - 1
           END AS i,
           b.owner, b.key, b.level, date_part('epoch', b.bucket)::int8 AS epoch, b.weight,
           b.streams, b.listeners, b.artist_id, v.version,
           v.version = ANY(%(known)s::text[]) AS held, b.bitmap
    FROM listener_bitmaps b
    -- The table's file: a rewrite (VACUUM FULL, CLUSTER, a rebuild's swap) moves rows to slots
    -- other rows of the same transaction held, so the slot and xmin alone could name two
    -- contents.
    CROSS JOIN (SELECT pg_relation_filenode('listener_bitmaps')::text AS node) f
    CROSS JOIN LATERAL (SELECT f.node || ':' || b.ctid::text || ':' || b.xmin::text AS version) v
    WHERE b.scope = %(scope)s AND b.dim = %(dim)s
  AND (%(owners)s::uuid[] IS NULL OR b.owner = ANY(%(owners)s::uuid[]))
  AND (%(artist)s::uuid IS NULL OR b.artist_id = %(artist)s::uuid)
  AND ((b.level = 'q' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(q)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(q_lo)s::int8) AND to_timestamp(%(q_hi)s::int8)))
       OR (b.level = 'o' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(o)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(o_lo)s::int8) AND to_timestamp(%(o_hi)s::int8)))
       OR (b.level = 'h' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(h)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(h_lo)s::int8) AND to_timestamp(%(h_hi)s::int8)))
       OR (b.level = 's' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(s)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(s_lo)s::int8) AND to_timestamp(%(s_hi)s::int8)))
       OR (b.level = 'd' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(d)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(d_lo)s::int8) AND to_timestamp(%(d_hi)s::int8))))
), groups AS (
    SELECT r.i, r.owner, r.key, count(*) AS n, sum(r.weight * r.listeners) AS alone,
           sum(r.streams) AS streams,
           string_agg(r.version || ' ' || r.level || ' ' || r.epoch || ' ' || r.weight, ' ')
           AS rows
    FROM found r
    GROUP BY r.i, r.owner, r.key
), several AS MATERIALIZED (
    -- The groups whose bytes are sent, first, apart: the planner expects one row of `found` (it
    -- cannot estimate the blocks asked for) and joins it to these in a nested loop, which over
    -- every group (the filter applied on each rescan) cost ~40 ms for an hourly chart of 28 days
    -- on a 20M-row table (673 groups x 757 rows; docs/benchmarks.md, "Platform fixture").
    SELECT g.i, g.owner, g.key FROM groups g WHERE g.n > 1 OR %(edges)s
), bytes AS (
    SELECT r.i, r.owner, r.key, array_agg(r.version) AS versions, array_agg(r.bitmap) AS data,
           (array_agg(r.artist_id))[1] AS artist_id
    FROM found r
    JOIN several g ON g.i = r.i AND g.owner = r.owner AND g.key = r.key
    WHERE NOT r.held
    GROUP BY r.i, r.owner, r.key
)
SELECT g.i, g.owner, g.key, g.n, g.alone, g.streams, g.rows, b.versions, b.data, b.artist_id
FROM groups g
LEFT JOIN bytes b ON b.i = g.i AND b.owner = g.owner AND b.key = g.key;

-- name: edge_listeners
-- Listener ids and weights of the stream sessions in the unaligned edges of a range.
SELECT s.track_id, l.id, s.weight,
       coalesce(CASE %(dim)s WHEN 'country' THEN s.country WHEN 'device' THEN s.device
                             WHEN 'source' THEN s.source END, 'unknown') AS key,
       CASE WHEN %(step)s::int8 IS NOT NULL
            THEN floor((date_part('epoch', s.started_at) - %(first)s::int8) / %(step)s::int8)::int8
                 + 1
            ELSE width_bucket(date_part('epoch', s.started_at), %(epochs)s::float8[])
       END AS b
FROM playback_sessions s
JOIN listener_ids l ON l.listener_key = s.listener_key
WHERE s.is_stream
  AND ((s.started_at >= %(from)s AND s.started_at < %(mid_from)s)
       OR (s.started_at >= %(mid_to)s AND s.started_at < %(to)s))
  AND (%(artist)s::uuid IS NULL OR s.artist_id = %(artist)s::uuid)
  AND (%(track)s::uuid IS NULL OR s.track_id = %(track)s::uuid);

-- name: offset_hours_missing
-- `lufy migrate` (lufy/migrate.py): whether the rows of level 'o' (hours from half past) are to
-- be derived from the quarter-hours (tables that predate the level: quarter-hour rows without
-- dimension and no 'o' row; the projection writes both from then on).
SELECT to_regclass('listener_bitmaps') IS NOT NULL
   AND EXISTS (SELECT 1 FROM listener_bitmaps WHERE dim = '' AND level = 'q')
   AND NOT EXISTS (SELECT 1 FROM listener_bitmaps WHERE level = 'o');

-- name: lock_bitmaps
-- No projector writes while the 'o' rows are derived (here and in counters.sql).
LOCK TABLE listener_bitmaps, session_blocks IN SHARE ROW EXCLUSIVE MODE;

-- name: offset_hour_quarters
-- The quarter-hour rows without dimension, each with the hour from half past it lies in (from
-- 00:30 to 23:30, as `session_block_keys`), in the order of those hours' rows.
SELECT scope, owner, weight, date_bin('1 hour', bucket, timestamptz '1970-01-01 00:30:00+00'),
       artist_id, streams, bitmap
FROM listener_bitmaps
WHERE dim = '' AND level = 'q'
  AND bucket - date_bin('1 day', bucket, timestamptz '1970-01-01 00:30:00+00')
      < interval '23 hours'
ORDER BY 1, 2, 3, 4;

-- name: analyze_bitmaps
-- Statistics that know the new rows: planned as absent, the reads' grouping joins them row by
-- row (measured: 60 ms instead of 0.5 ms for an hourly chart of 28 days).
ANALYZE listener_bitmaps;

-- name: insert_offset_hours
INSERT INTO listener_bitmaps (scope, owner, dim, key, level, bucket, weight, artist_id,
                              streams, listeners, bitmap)
SELECT u.scope, u.owner, '', '', 'o', u.bucket, u.weight, u.artist_id, u.streams, u.listeners,
       u.bitmap
FROM unnest(%(scope)b::text[], %(owner)b::uuid[], %(bucket)b::timestamptz[],
            %(weight)b::float8[], %(artist_id)b::uuid[], %(streams)b::float8[],
            %(listeners)b::int4[], %(bitmap)b::bytea[])
    AS u(scope, owner, bucket, weight, artist_id, streams, listeners, bitmap);
