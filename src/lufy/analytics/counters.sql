-- Session counters per block of time (lufy/analytics/counters.py).

-- name: add_batch
-- What a range of the analytics projection adds (projections.sql, `analytics_batch_deltas`:
-- each changed session's contribution after minus before, per track and 15-minute bucket),
-- summed per block of every level and scope; blocks whose deltas are all zero are left alone.
INSERT INTO session_blocks AS b (scope, owner, level, bucket, artist_id, streams, listen_ms,
                                 starts, completions, skips)
SELECT k.scope, k.owner, k.level, k.bucket, k.artist_id, sum(d.streams), sum(d.listen_ms),
       sum(d.starts), sum(d.completions), sum(d.skips)
FROM analytics_batch_deltas d
CROSS JOIN LATERAL session_block_keys(d.bucket, d.track_id, d.artist_id) AS k
GROUP BY 1, 2, 3, 4, 5
HAVING sum(d.streams) <> 0 OR sum(d.listen_ms) <> 0 OR sum(d.starts) <> 0
    OR sum(d.completions) <> 0 OR sum(d.skips) <> 0
ORDER BY 1, 2, 3, 4
ON CONFLICT (scope, owner, level, bucket) DO UPDATE SET
    streams = b.streams + excluded.streams, listen_ms = b.listen_ms + excluded.listen_ms,
    starts = b.starts + excluded.starts, completions = b.completions + excluded.completions,
    skips = b.skips + excluded.skips;

-- name: read
-- Under the caller's RLS, summed per owner and bucket (`by_bucket`: a bucket's index from the
-- buckets' uniform `step` from `first` or their bounds as `epochs`, as listeners.sql's
-- `read_groups`; every block lies in one bucket) or, else, per owner (index 0). The blocks of each level as an array
-- of epochs (index probes), or as a range of them when they are all the blocks in it (an index
-- range scan): as listeners.sql.
WITH days AS MATERIALIZED (
    -- The UTC days of the blocks with any session (a block lies in one UTC day): blocks of the
    -- other days are not looked up, so a 12-month range of an artist with 28 days of plays
    -- probes 28 days' blocks.
    SELECT d.bucket FROM session_blocks d
    WHERE d.scope = %(day_scope)s AND d.owner = %(day_owner)s AND d.level = 'd'
      AND d.bucket BETWEEN to_timestamp(%(day_lo)s::int8) AND to_timestamp(%(day_hi)s::int8)
)
SELECT b.owner,
       CASE WHEN NOT %(by_bucket)s THEN 0
            WHEN %(step)s::int8 IS NOT NULL
            THEN (date_part('epoch', b.bucket)::int8 - %(first)s::int8) / %(step)s::int8
            ELSE width_bucket(date_part('epoch', b.bucket)::int8, %(epochs)s::int8[]) - 1
       END AS at,
       sum(b.streams), sum(b.listen_ms), sum(b.starts), sum(b.completions), sum(b.skips)
FROM session_blocks b
WHERE b.scope = %(scope)s
  AND (%(owners)s::uuid[] IS NULL OR b.owner = ANY(%(owners)s::uuid[]))
  AND (%(artist)s::uuid IS NULL OR b.artist_id = %(artist)s::uuid)
  AND ((b.level = 'q' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(q)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(q_lo)s::int8) AND to_timestamp(%(q_hi)s::int8)))
       OR (b.level = 'o' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(o)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(o_lo)s::int8) AND to_timestamp(%(o_hi)s::int8)))
       OR (b.level = 'h' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(h)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(h_lo)s::int8) AND to_timestamp(%(h_hi)s::int8)))
       OR (b.level = 's' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(s)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(s_lo)s::int8) AND to_timestamp(%(s_hi)s::int8)))
       OR (b.level = 'd' AND (b.bucket = ANY(ARRAY(SELECT to_timestamp(e) FROM unnest(%(d)s::int8[]) e WHERE to_timestamp(e - e %% 86400) IN (SELECT bucket FROM days))) OR b.bucket BETWEEN to_timestamp(%(d_lo)s::int8) AND to_timestamp(%(d_hi)s::int8))))
GROUP BY 1, 2;

-- name: fill_offset_hours
-- `lufy migrate` (lufy/migrate.py): where the table predates level 'o' (hours from half past:
-- quarter-hour rows and no 'o' row), each 'o' row is the sum of its quarter-hours (from 00:30
-- to 23:30, as `session_block_keys`); the projection keeps them from then on.
INSERT INTO session_blocks AS b (scope, owner, level, bucket, artist_id, streams, listen_ms,
                                 starts, completions, skips)
SELECT q.scope, q.owner, 'o', date_bin('1 hour', q.bucket, timestamptz '1970-01-01 00:30:00+00'),
       q.artist_id, sum(q.streams), sum(q.listen_ms), sum(q.starts), sum(q.completions),
       sum(q.skips)
FROM session_blocks q
WHERE q.level = 'q'
  AND q.bucket - date_bin('1 day', q.bucket, timestamptz '1970-01-01 00:30:00+00')
      < interval '23 hours'
  AND NOT EXISTS (SELECT 1 FROM session_blocks o WHERE o.level = 'o')
GROUP BY 1, 2, 3, 4, 5;

-- name: analyze_blocks
ANALYZE session_blocks;
