-- Dashboard queries. Every query reads the live read models under the caller's RLS context and
-- takes the range as [from, to) split in three: the 15-minute-aligned middle [mid_from, mid_to)
-- comes from the pre-aggregated rows (session counters and listener bitmaps per block, read by
-- lufy/analytics/counters.py and listeners.py; likes and follows from the 15-minute rollups,
-- only their rows with any), the unaligned edges [from, mid_from) and [mid_to, to) from the
-- sessions and likes/follows one by one, so any instant range is exact and the cost follows the
-- range, not the history. `bounds` are the bucket boundaries (UTC instants computed for the
-- requested zone), given as `Grid.grouping` says: the uniform width of the buckets (`step`
-- seconds from `first`, an epoch: hours, UTC days), so a row's bucket is arithmetic and an hourly
-- chart of 12 months sends no bounds (8,761 instants as text took ~7 ms to parse, per query),
-- or their bounds as epochs (`epochs`: days of a zone with summer time, weeks, months); each
-- row's bucket is numbered 1..n.

-- name: sums
WITH src AS (
    SELECT r.bucket AS at, 0 AS streams, 0 AS listen_ms, 0 AS starts, 0 AS completions,
           0 AS skips, r.likes,
           CASE WHEN %(track)s::uuid IS NULL THEN 0 ELSE r.follows END AS followers
    FROM track_rollup_15m r
    WHERE (r.likes <> 0 OR r.follows <> 0)
      AND r.bucket >= %(mid_from)s AND r.bucket < %(mid_to)s
      AND (%(artist)s::uuid IS NULL OR r.artist_id = %(artist)s::uuid)
      AND (%(track)s::uuid IS NULL OR r.track_id = %(track)s::uuid)
    UNION ALL
    SELECT f.bucket, 0, 0, 0, 0, 0, 0, f.follows
    FROM artist_rollup_15m f
    WHERE f.bucket >= %(mid_from)s AND f.bucket < %(mid_to)s AND %(track)s::uuid IS NULL
      AND (%(artist)s::uuid IS NULL OR f.artist_id = %(artist)s::uuid)
    UNION ALL
    SELECT s.started_at, CASE WHEN s.is_stream THEN s.weight ELSE 0 END, s.listened_ms * s.weight,
           s.weight, CASE WHEN s.completed THEN s.weight ELSE 0 END,
           CASE WHEN s.skipped THEN s.weight ELSE 0 END, 0, 0
    FROM playback_sessions s
    WHERE ((s.started_at >= %(from)s AND s.started_at < %(mid_from)s)
           OR (s.started_at >= %(mid_to)s AND s.started_at < %(to)s))
      AND (%(artist)s::uuid IS NULL OR s.artist_id = %(artist)s::uuid)
      AND (%(track)s::uuid IS NULL OR s.track_id = %(track)s::uuid)
    UNION ALL
    SELECT e.occurred_at, 0, 0, 0, 0, 0, CASE WHEN e.kind = 'like' THEN e.delta ELSE 0 END,
           CASE WHEN e.kind = 'follow' THEN e.delta ELSE 0 END
    FROM engagement_events e
    WHERE ((e.occurred_at >= %(from)s AND e.occurred_at < %(mid_from)s)
           OR (e.occurred_at >= %(mid_to)s AND e.occurred_at < %(to)s))
      AND (%(artist)s::uuid IS NULL OR e.artist_id = %(artist)s::uuid)
      AND (%(track)s::uuid IS NULL OR e.track_id = %(track)s::uuid)
)
SELECT CASE WHEN %(step)s::int8 IS NOT NULL
            THEN floor((date_part('epoch', at) - %(first)s::int8) / %(step)s::int8)::int8 + 1
            ELSE width_bucket(date_part('epoch', at), %(epochs)s::float8[])
       END AS b, sum(streams), sum(listen_ms),
       sum(starts), sum(completions), sum(skips), sum(likes), sum(followers)
FROM src
GROUP BY 1;

-- name: track_sums
WITH src AS (
    SELECT r.track_id, 0 AS streams, 0 AS listen_ms, 0 AS starts, 0 AS completions,
           0 AS skips, r.likes, r.follows
    FROM track_rollup_15m r
    WHERE (r.likes <> 0 OR r.follows <> 0)
      AND r.bucket >= %(mid_from)s AND r.bucket < %(mid_to)s
      AND (%(artist)s::uuid IS NULL OR r.artist_id = %(artist)s::uuid)
    UNION ALL
    SELECT s.track_id, CASE WHEN s.is_stream THEN s.weight ELSE 0 END, s.listened_ms * s.weight,
           s.weight, CASE WHEN s.completed THEN s.weight ELSE 0 END,
           CASE WHEN s.skipped THEN s.weight ELSE 0 END, 0, 0
    FROM playback_sessions s
    WHERE ((s.started_at >= %(from)s AND s.started_at < %(mid_from)s)
           OR (s.started_at >= %(mid_to)s AND s.started_at < %(to)s))
      AND (%(artist)s::uuid IS NULL OR s.artist_id = %(artist)s::uuid)
    UNION ALL
    SELECT e.track_id, 0, 0, 0, 0, 0, CASE WHEN e.kind = 'like' THEN e.delta ELSE 0 END,
           CASE WHEN e.kind = 'follow' THEN e.delta ELSE 0 END
    FROM engagement_events e
    WHERE e.track_id IS NOT NULL
      AND ((e.occurred_at >= %(from)s AND e.occurred_at < %(mid_from)s)
           OR (e.occurred_at >= %(mid_to)s AND e.occurred_at < %(to)s))
      AND (%(artist)s::uuid IS NULL OR e.artist_id = %(artist)s::uuid)
)
SELECT track_id, (SELECT t.title FROM lufy.tracks t WHERE t.id = src.track_id), sum(streams),
       sum(listen_ms), sum(starts), sum(completions), sum(skips), sum(likes), sum(follows)
FROM src
GROUP BY 1;

-- name: track_titles
SELECT id, title FROM lufy.tracks WHERE id = ANY(%(ids)s);

-- name: artist_titles
SELECT id, title FROM lufy.tracks WHERE artist_id = %(artist)s;
