-- Streams per minute of the last day (lufy/analytics/minutes.py, table in
-- projections/analytics_minutes.sql).

-- name: add_batch
-- What a range of the analytics projection changed (its work table of changed sessions,
-- projections.sql `analytics_batch_changes`, after `verify`): each changed session's streams
-- after minus before at the UTC minute of its start, for its artist and the platform. Minutes
-- older than a day are neither kept nor changed: a minute inside the day now was inside it at
-- every earlier range, so every change to it was applied and it stays exact.
WITH parts AS (
    SELECT date_bin('1 minute', coalesce(c.start_event_at, c.first_event_at),
                    timestamptz '1970-01-01 00:00:00+00') AS minute,
           c.artist_id, c.weight AS streams
    FROM analytics_batch_changes c
    WHERE c.verified AND c.listened_ms >= 30000
    UNION ALL
    SELECT date_bin('1 minute', coalesce(c.o_start_event_at, c.o_first_event_at),
                    timestamptz '1970-01-01 00:00:00+00'),
           c.o_artist_id, -c.o_weight
    FROM analytics_batch_changes c
    WHERE c.existed AND c.o_verified AND c.o_listened_ms >= 30000
)
INSERT INTO session_minutes AS m (scope, owner, minute, artist_id, streams)
SELECT o.scope, o.owner, p.minute, o.artist_id, sum(p.streams)
FROM parts p
CROSS JOIN LATERAL (VALUES ('a', p.artist_id, p.artist_id),
                           ('p', '00000000-0000-0000-0000-000000000000'::uuid, NULL::uuid))
    AS o(scope, owner, artist_id)
WHERE p.minute >= now() - interval '1 day'
GROUP BY 1, 2, 3, 4
HAVING sum(p.streams) <> 0
ORDER BY 1, 2, 3
ON CONFLICT (scope, owner, minute) DO UPDATE SET streams = m.streams + excluded.streams;

-- name: drop_old
DELETE FROM session_minutes WHERE minute < now() - interval '1 day';

-- name: read
-- Under the caller's RLS: the minutes of [from, to) of one artist or of the platform.
SELECT extract(epoch FROM m.minute)::int8, m.streams
FROM session_minutes m
WHERE m.scope = %(scope)s AND m.owner = %(owner)s
  AND m.minute >= %(from)s AND m.minute < %(to)s;
