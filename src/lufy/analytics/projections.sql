-- The analytics projection (lufy/analytics/projections.py), set-based: each statement handles a
-- whole range of the log (a live batch, or a rebuild's page of up to `rebuild_step` events).
-- The range is `after < (transaction_id, global_position) <= upto`, every transaction in it
-- finished; `n` numbers its events in that (log) order. Work tables are temporary and dropped
-- at commit; the projection's own tables are unqualified (live schema, or the rebuild's shadow).

-- name: typed_events
-- Every handled event of the range, its payload fields typed once: the work table
-- `analytics_batch` (AnalyticsProjection.apply_range: `CREATE TEMP TABLE analytics_batch ON
-- COMMIT DROP AS` this), or a rebuild's page typed ahead on its reading connection
-- (`INSERT INTO` a slot of sql/0950_analytics_rebuild_pages.sql, same columns in the same
-- order). `listened_ms` is 0 when absent, `weight` 1 when absent or 0 (as `metadata.weight or
-- 1.0`). `playback`: a playback.* event (a column, not a condition on `type`, so that the
-- planner knows most rows are).
SELECT row_number() OVER (ORDER BY e.transaction_id, e.global_position) AS n,
       e.event_id, e.type, starts_with(e.type, 'playback.') AS playback,
       e.occurred_at, e.recorded_at,
       e.data ->> 'session_id' AS session_id,
       (e.data ->> 'track_id')::uuid AS track_id,
       (e.data ->> 'artist_id')::uuid AS artist_id,
       e.data ->> 'listener_key' AS listener_key,
       coalesce((e.data ->> 'listened_ms')::bigint, 0) AS listened_ms,
       e.data ->> 'source' AS source,
       e.data ->> 'country' AS country,
       e.data ->> 'device' AS device,
       coalesce(nullif((e.metadata ->> 'weight')::float8, 0), 1) AS weight,
       (e.data ->> 'grant_id')::uuid AS grant_id,
       (e.data ->> 'listener_id') IS NOT NULL AS signed_in,
       coalesce((e.data ->> 'imported')::boolean, false) AS imported
FROM lufy.events e
WHERE (e.transaction_id, e.global_position) > (%(range_after_tx)s::text::xid8, %(range_after_pos)s)
  AND (e.transaction_id, e.global_position) <= (%(range_upto_tx)s::text::xid8, %(range_upto_pos)s)
  -- `|| ''` keeps the planner on events_transaction_order (the range), off events_type_order.
  AND (e.type || '') = ANY(%(types)s::text[])
  AND e.type <> 'catalog.stream_authorized';

-- name: staged_events
-- The work table `analytics_batch` of a rebuild's page typed ahead into slot {slot}
-- (`typed_events`, AnalyticsProjection.stage_range).
CREATE TEMP TABLE analytics_batch ON COMMIT DROP AS SELECT * FROM {slot};

-- name: clear_slot
-- A slot of pages typed ahead, before it takes the next page (its previous page is applied).
TRUNCATE {slot}, {fold};

-- name: stage_fold
-- A page typed ahead folded into its slot on the rebuild's reading connection: `session_fold`
-- over a view of the slot named as the work table (dropped at once).
CREATE TEMP VIEW analytics_batch AS SELECT * FROM {slot};

-- name: unstage_view
DROP VIEW pg_temp.analytics_batch;

-- name: batch_grants
-- Stream grants of the range (few: one per stream route call). A grant carries its listener's
-- key (privacy); one written before `lufy migrate` sealed the log carries the user id instead,
-- hashed in Python with the database's listener-key secret.
SELECT (e.data ->> 'grant_id')::uuid, (e.data ->> 'track_id')::uuid, e.data ->> 'listener_id',
       e.occurred_at, e.data ->> 'listener_key'
FROM lufy.events e
WHERE (e.transaction_id, e.global_position) > (%(range_after_tx)s::text::xid8, %(range_after_pos)s)
  AND (e.transaction_id, e.global_position) <= (%(range_upto_tx)s::text::xid8, %(range_upto_pos)s)
  AND e.type = 'catalog.stream_authorized'
  AND e.data ->> 'grant_id' IS NOT NULL;

-- name: insert_grants
INSERT INTO stream_grants (grant_id, track_id, listener_key, granted_at)
SELECT * FROM unnest(%(grant_id)b::uuid[], %(track_id)b::uuid[], %(listener_key)b::text[],
                     %(granted_at)b::timestamptz[])
ON CONFLICT (grant_id) DO NOTHING;

-- name: hmac_key
SELECT hmac_key FROM lufy.analytics_secret;

-- name: session_fold
-- What the range's playback events say about each session, folded in one pass (hashed by
-- session), from the work table `analytics_batch` alone (so that a rebuild folds each page
-- ahead on its reading connection, AnalyticsProjection.stage_range, into a slot of
-- sql/0951_analytics_rebuild_folds.sql: same columns in the same order): `valid_from` is its
-- first event naming both track and artist, which gives a session not seen before its track,
-- artist and listener (`v_*`); `claim_n` is its first event carrying a grant id.
-- Text fields keep the first non-empty value in log order: when a session's events disagree
-- (lo <> hi) or any has '' (`mixed` in batch_sessions), batch_firsts settles it in order.
-- (min and max in the "C" collation only tell whether values differ: cheaper than the
-- database's.)
SELECT f.*, fe.track_id AS v_track_id, fe.artist_id AS v_artist_id,
       fe.listener_key AS v_listener_key
FROM (
    SELECT ev.session_id, min(ev.n) AS first_n,
           min(ev.n) FILTER (WHERE ev.track_id IS NOT NULL AND ev.artist_id IS NOT NULL)
               AS valid_from,
           min(ev.n) FILTER (WHERE ev.grant_id IS NOT NULL) AS claim_n,
           min(ev.occurred_at) FILTER (WHERE ev.type = 'playback.started') AS start_event_at,
           min(ev.occurred_at) AS first_event_at,
           max(ev.listened_ms) AS listened_ms,
           bool_or(ev.type = 'playback.completed') AS completed,
           bool_or(ev.type = 'playback.skipped') AS skipped,
           min(ev.source COLLATE "C") AS source, max(ev.source COLLATE "C") AS source_hi,
           min(ev.country COLLATE "C") AS country, max(ev.country COLLATE "C") AS country_hi,
           min(ev.device COLLATE "C") AS device, max(ev.device COLLATE "C") AS device_hi,
           min(ev.grant_id::text COLLATE "C") AS grant_id,
           max(ev.grant_id::text COLLATE "C") AS grant_hi,
           max(ev.weight) AS weight,
           bool_or(ev.signed_in) AS signed_in,
           bool_or(ev.imported) AS imported,
           min(ev.recorded_at - ev.listened_ms * interval '1 millisecond') AS grant_deadline
    FROM analytics_batch ev
    WHERE ev.playback
    GROUP BY ev.session_id
) f
LEFT JOIN analytics_batch fe ON fe.n = f.valid_from;

-- name: batch_sessions
-- Each session of the range folded (`session_fold`, inline or a rebuild's slot) and whether
-- it is stored already.
-- A session not seen before starts at its first event naming both track and artist
-- (`from_n`; earlier events are ignored, as they were when events were folded one by one). A
-- new session whose first events name no track or artist is marked `refold`: drop_ignored
-- removes those events and this statement runs again, over the fold of what is left (a rare
-- case, kept out of the common one). `mixed`: see batch_firsts.
CREATE TEMP TABLE analytics_batch_sessions ON COMMIT DROP AS
SELECT f.session_id, f.claim_n, s.session_id IS NULL AS is_new,
       CASE WHEN s.session_id IS NULL THEN f.valid_from ELSE 0 END AS from_n,
       s.session_id IS NULL AND f.first_n < f.valid_from AS refold,
       CASE WHEN s.session_id IS NULL THEN f.v_track_id END AS track_id,
       CASE WHEN s.session_id IS NULL THEN f.v_artist_id END AS artist_id,
       CASE WHEN s.session_id IS NULL THEN f.v_listener_key END AS listener_key,
       f.start_event_at, f.first_event_at, f.listened_ms, f.completed, f.skipped,
       f.source COLLATE "default" AS source, f.country COLLATE "default" AS country,
       f.device COLLATE "default" AS device, f.weight, f.grant_id::uuid AS grant_id,
       f.signed_in, f.imported, f.grant_deadline,
       (f.source <> f.source_hi OR f.source = '' OR f.country <> f.country_hi
        OR f.country = '' OR f.device <> f.device_hi OR f.device = ''
        OR f.grant_id <> f.grant_hi) AS mixed
FROM {fold} f
-- One index probe per session: as a plain join, the fold read from a rebuild's slot (whose
-- size the planner knows) was joined by hashing the whole table, 300 ms a page late in a
-- rebuild.
LEFT JOIN LATERAL (
    SELECT s.session_id FROM playback_sessions s WHERE s.session_id = f.session_id LIMIT 1
) s ON true
WHERE s.session_id IS NOT NULL OR f.valid_from IS NOT NULL;

-- name: set_aside_first_fold
-- A range with `refold` sessions: the first fold is kept aside for their `claim_n` (which counts
-- the ignored events too), and batch_sessions runs again once drop_ignored has run.
ALTER TABLE analytics_batch_sessions RENAME TO analytics_batch_first_fold;

-- name: drop_ignored
-- The events of new sessions before their first naming track and artist (the fold ignores them).
DELETE FROM analytics_batch ev
USING analytics_batch_first_fold f
WHERE f.refold AND ev.session_id = f.session_id AND ev.n < f.from_n
  AND ev.playback;

-- name: restore_claims
UPDATE analytics_batch_sessions b SET claim_n = f.claim_n
FROM analytics_batch_first_fold f
WHERE f.refold AND b.session_id = f.session_id;

-- name: drop_first_fold
DROP TABLE pg_temp.analytics_batch_first_fold;

-- name: any_mixed
SELECT coalesce(bool_or(mixed), false), coalesce(bool_or(refold), false)
FROM analytics_batch_sessions;

-- name: batch_firsts
-- Sessions whose events disagree on a text field or the grant: the first non-empty value in
-- log order, else the last event's value ('' or none), as `state.x or event.x` event by event.
UPDATE analytics_batch_sessions b
SET source = coalesce(f.source[1], f.last_source), country = coalesce(f.country[1], f.last_country),
    device = coalesce(f.device[1], f.last_device), grant_id = f.grant_id[1]
FROM (
    SELECT ev.session_id,
           array_agg(ev.source ORDER BY ev.n) FILTER (WHERE ev.source <> '') AS source,
           (array_agg(ev.source ORDER BY ev.n DESC))[1] AS last_source,
           array_agg(ev.country ORDER BY ev.n) FILTER (WHERE ev.country <> '') AS country,
           (array_agg(ev.country ORDER BY ev.n DESC))[1] AS last_country,
           array_agg(ev.device ORDER BY ev.n) FILTER (WHERE ev.device <> '') AS device,
           (array_agg(ev.device ORDER BY ev.n DESC))[1] AS last_device,
           array_agg(ev.grant_id ORDER BY ev.n) FILTER (WHERE ev.grant_id IS NOT NULL)
               AS grant_id
    FROM analytics_batch ev
    JOIN analytics_batch_sessions m ON m.session_id = ev.session_id AND m.mixed
    WHERE ev.playback AND ev.n >= m.from_n
    GROUP BY ev.session_id
) f
WHERE b.session_id = f.session_id;

-- name: batch_changes
-- Each session of the range before (o_*) and after it, where anything changed. A stored text
-- value that is empty or missing gives way to the range's (`state.x or event.x`).
CREATE TEMP TABLE analytics_batch_changes ON COMMIT DROP AS
SELECT * FROM (
    SELECT b.session_id, b.claim_n, o.session_id IS NOT NULL AS existed,
           o.track_id AS o_track_id, o.artist_id AS o_artist_id,
           o.listener_key AS o_listener_key, o.start_event_at AS o_start_event_at,
           o.first_event_at AS o_first_event_at, o.listened_ms AS o_listened_ms,
           o.completed AS o_completed, o.skipped AS o_skipped, o.source AS o_source,
           o.country AS o_country, o.device AS o_device, o.weight AS o_weight,
           o.grant_id AS o_grant_id, o.signed_in AS o_signed_in, o.imported AS o_imported,
           o.grant_deadline AS o_grant_deadline, o.verified AS o_verified,
           coalesce(o.track_id, b.track_id) AS track_id,
           coalesce(o.artist_id, b.artist_id) AS artist_id,
           coalesce(o.listener_key, b.listener_key) AS listener_key,
           least(o.start_event_at, b.start_event_at) AS start_event_at,
           least(o.first_event_at, b.first_event_at) AS first_event_at,
           greatest(o.listened_ms, b.listened_ms) AS listened_ms,
           coalesce(o.completed, false) OR b.completed AS completed,
           coalesce(o.skipped, false) OR b.skipped AS skipped,
           CASE WHEN o.source <> '' THEN o.source ELSE b.source END AS source,
           CASE WHEN o.country <> '' THEN o.country ELSE b.country END AS country,
           CASE WHEN o.device <> '' THEN o.device ELSE b.device END AS device,
           greatest(o.weight, b.weight) AS weight,
           coalesce(o.grant_id, b.grant_id) AS grant_id,
           coalesce(o.signed_in, false) OR b.signed_in AS signed_in,
           coalesce(o.imported, false) OR b.imported AS imported,
           least(o.grant_deadline, b.grant_deadline) AS grant_deadline,
           -- Imported: verified. Otherwise as stored until `verify` decides.
           coalesce(o.imported, false) OR b.imported OR coalesce(o.verified, false) AS verified
    FROM analytics_batch_sessions b
    -- Only sessions stored before (`is_new` false) are looked up, one index probe each: as a
    -- plain join the planner hashed the whole table for every range (a rebuild's page: 33,000
    -- sessions against up to a million stored, every page).
    LEFT JOIN LATERAL (
        SELECT * FROM playback_sessions o
        WHERE NOT b.is_new AND o.session_id = b.session_id
        LIMIT 1
    ) o ON true
) c
WHERE NOT c.existed
   OR (c.track_id, c.artist_id, c.listener_key, c.start_event_at, c.first_event_at,
       c.listened_ms, c.completed, c.skipped, c.source, c.country, c.device, c.weight,
       c.grant_id, c.signed_in, c.imported, c.grant_deadline)
      IS DISTINCT FROM
      (c.o_track_id, c.o_artist_id, c.o_listener_key, c.o_start_event_at, c.o_first_event_at,
       c.o_listened_ms, c.o_completed, c.o_skipped, c.o_source, c.o_country, c.o_device,
       c.o_weight, c.o_grant_id, c.o_signed_in, c.o_imported, c.o_grant_deadline);

-- name: verify
-- Decide `verified` for every changed session (docs/analytics.md, "Verified sessions"):
-- imported, or its grant was issued for its track, to its listener (the same key, or an
-- anonymous grant for an anonymous listener), is claimed by it (the first %(grant_sessions)s
-- sessions to present it, in log order: by the event that first carried it, then session id)
-- and was issued no later than its deadline.
WITH cand AS (
    SELECT c.session_id, c.claim_n, c.grant_deadline, g.grant_id, g.sessions, g.granted_at
    FROM analytics_batch_changes c
    JOIN stream_grants g ON g.grant_id = c.grant_id
    WHERE NOT c.imported AND g.track_id = c.track_id
      AND CASE WHEN g.listener_key IS NOT NULL THEN g.listener_key = c.listener_key
               ELSE NOT c.signed_in END
), ranked AS (
    SELECT cand.*,
           row_number() OVER (PARTITION BY cand.grant_id
                              ORDER BY cand.claim_n NULLS LAST, cand.session_id COLLATE "C")
               AS r
    FROM cand WHERE NOT cand.session_id = ANY(cand.sessions)
), claims AS (
    SELECT ranked.grant_id, array_agg(ranked.session_id ORDER BY ranked.r) AS claimed
    FROM ranked
    WHERE ranked.r <= %(grant_sessions)s - cardinality(ranked.sessions)
    GROUP BY ranked.grant_id
), claim AS (
    UPDATE stream_grants g SET sessions = g.sessions || claims.claimed
    FROM claims WHERE g.grant_id = claims.grant_id
), holders AS (
    SELECT cand.session_id, cand.granted_at <= cand.grant_deadline AS in_time
    FROM cand LEFT JOIN claims ON claims.grant_id = cand.grant_id
    WHERE cand.session_id = ANY(cand.sessions) OR cand.session_id = ANY(claims.claimed)
)
UPDATE analytics_batch_changes c
SET verified = coalesce(h.in_time, false)
FROM analytics_batch_changes c2 LEFT JOIN holders h ON h.session_id = c2.session_id
WHERE c.session_id = c2.session_id AND NOT c2.imported
  AND c2.verified IS DISTINCT FROM coalesce(h.in_time, false);

-- name: insert_sessions
-- The changed sessions not stored before (`existed` false: the projection is its tables' only
-- writer, so nobody stored them since): a plain INSERT, one unique check each, rather than
-- the two index searches of INSERT … ON CONFLICT. In the order of the listener index, whose
-- keys are random: consecutive rows then go to the same or neighbouring pages of it (a
-- rebuild's page inserts some 33,000 sessions; this index costs more to fill than the primary
-- key, whose new sessions in a page are often neighbours anyway).
INSERT INTO playback_sessions (session_id, track_id, artist_id, listener_key, start_event_at,
                               first_event_at, listened_ms, completed, skipped, source,
                               country, device, weight, grant_id, signed_in, imported,
                               grant_deadline, verified)
SELECT c.session_id, c.track_id, c.artist_id, c.listener_key, c.start_event_at,
       c.first_event_at, c.listened_ms, c.completed, c.skipped, c.source, c.country, c.device,
       c.weight, c.grant_id, c.signed_in, c.imported, c.grant_deadline, c.verified
FROM analytics_batch_changes c
WHERE NOT c.existed
ORDER BY c.listener_key COLLATE "C", coalesce(c.start_event_at, c.first_event_at);

-- name: update_sessions
-- The changed sessions stored before.
UPDATE playback_sessions AS s SET
    track_id = c.track_id, artist_id = c.artist_id, listener_key = c.listener_key,
    start_event_at = c.start_event_at, first_event_at = c.first_event_at,
    listened_ms = c.listened_ms, completed = c.completed, skipped = c.skipped,
    source = c.source, country = c.country, device = c.device, weight = c.weight,
    grant_id = c.grant_id, signed_in = c.signed_in, imported = c.imported,
    grant_deadline = c.grant_deadline, verified = c.verified
FROM analytics_batch_changes c
-- Probed by the primary key (as a plain join the planner may read the whole table).
WHERE s.session_id = ANY(ARRAY(SELECT e.session_id FROM analytics_batch_changes e
                               WHERE e.existed))
  AND c.existed AND c.session_id = s.session_id;

-- name: batch_deltas
-- What the range adds to the rollups: each changed session's contribution after minus before
-- (at the 15-minute UTC bucket of its start), and each like/follow by its occurred_at.
CREATE TEMP TABLE analytics_batch_deltas ON COMMIT DROP AS
WITH parts AS (
    SELECT c.track_id, coalesce(c.start_event_at, c.first_event_at) AS at, c.artist_id,
           CASE WHEN c.verified AND c.listened_ms >= 30000 THEN c.weight ELSE 0 END AS streams,
           c.listened_ms * c.weight AS listen_ms, c.weight AS starts,
           CASE WHEN c.completed THEN c.weight ELSE 0 END AS completions,
           CASE WHEN c.skipped THEN c.weight ELSE 0 END AS skips,
           0::float8 AS likes, 0::float8 AS follows
    FROM analytics_batch_changes c
    UNION ALL
    SELECT c.o_track_id, coalesce(c.o_start_event_at, c.o_first_event_at), c.o_artist_id,
           -CASE WHEN c.o_verified AND c.o_listened_ms >= 30000 THEN c.o_weight ELSE 0 END,
           -(c.o_listened_ms * c.o_weight), -c.o_weight,
           -CASE WHEN c.o_completed THEN c.o_weight ELSE 0 END,
           -CASE WHEN c.o_skipped THEN c.o_weight ELSE 0 END, 0, 0
    FROM analytics_batch_changes c WHERE c.existed
    UNION ALL
    SELECT e.track_id, e.occurred_at, e.artist_id, 0, 0, 0, 0, 0,
           CASE e.type WHEN 'track.liked' THEN e.weight WHEN 'track.unliked' THEN -e.weight
                       ELSE 0 END,
           CASE e.type WHEN 'artist.followed' THEN e.weight
                       WHEN 'artist.unfollowed' THEN -e.weight ELSE 0 END
    FROM analytics_batch e
    WHERE e.type IN ('track.liked', 'track.unliked', 'artist.followed', 'artist.unfollowed')
      AND e.artist_id IS NOT NULL AND e.track_id IS NOT NULL
)
SELECT parts.track_id,
       date_bin('15 minutes', parts.at, timestamptz '2000-01-01 00:00:00+00') AS bucket,
       parts.artist_id, sum(parts.streams) AS streams, sum(parts.listen_ms) AS listen_ms,
       sum(parts.starts) AS starts, sum(parts.completions) AS completions,
       sum(parts.skips) AS skips, sum(parts.likes) AS likes, sum(parts.follows) AS follows
FROM parts
GROUP BY 1, 2, 3;

-- name: add_track_rollup
INSERT INTO track_rollup_15m AS r (track_id, bucket, artist_id, streams, listen_ms, starts,
                                   completions, skips, likes, follows)
SELECT d.track_id, d.bucket, d.artist_id, d.streams, d.listen_ms, d.starts, d.completions,
       d.skips, d.likes, d.follows
FROM analytics_batch_deltas d
ORDER BY d.track_id, d.bucket
ON CONFLICT (track_id, bucket) DO UPDATE SET
    streams = r.streams + excluded.streams, listen_ms = r.listen_ms + excluded.listen_ms,
    starts = r.starts + excluded.starts, completions = r.completions + excluded.completions,
    skips = r.skips + excluded.skips, likes = r.likes + excluded.likes,
    follows = r.follows + excluded.follows;

-- name: engagement
-- Likes and follows one by one, and net follows per artist and bucket.
WITH ev AS (
    SELECT e.event_id, CASE WHEN starts_with(e.type, 'track.') THEN 'like' ELSE 'follow' END AS kind,
           e.track_id, e.artist_id, e.occurred_at,
           CASE WHEN e.type IN ('track.liked', 'artist.followed') THEN e.weight
                ELSE -e.weight END AS delta
    FROM analytics_batch e
    WHERE e.type IN ('track.liked', 'track.unliked', 'artist.followed', 'artist.unfollowed')
      AND e.artist_id IS NOT NULL
), rows AS (
    INSERT INTO engagement_events (event_id, kind, track_id, artist_id, occurred_at, delta)
    SELECT ev.event_id, ev.kind, ev.track_id, ev.artist_id, ev.occurred_at, ev.delta FROM ev
    ORDER BY ev.event_id
    ON CONFLICT (event_id) DO NOTHING
)
INSERT INTO artist_rollup_15m AS r (artist_id, bucket, follows)
SELECT ev.artist_id, date_bin('15 minutes', ev.occurred_at, timestamptz '2000-01-01 00:00:00+00'),
       sum(ev.delta)
FROM ev WHERE ev.kind = 'follow'
GROUP BY 1, 2
ORDER BY 1, 2
ON CONFLICT (artist_id, bucket) DO UPDATE SET follows = r.follows + excluded.follows
RETURNING (r.bucket AT TIME ZONE 'UTC')::date;

-- name: mark_days
-- Days for the incremental refresh of analytics.track_daily / artist_daily: those of the
-- rollup rows the range changed, plus %(days)s (the artist rollup's). Written last in a batch:
-- a refresh holding a day's mark makes this wait, then mark the day again.
INSERT INTO analytics_dirty_days AS m (day)
SELECT DISTINCT day FROM (
    SELECT (d.bucket AT TIME ZONE 'UTC')::date AS day FROM analytics_batch_deltas d
    UNION
    SELECT unnest(%(days)s::date[])
) days
ORDER BY day
ON CONFLICT (day) DO UPDATE SET changes = m.changes + 1;

-- name: drop_work_tables
-- At the end of a range (they are dropped at commit anyway; a second range in the same
-- transaction starts afresh).
DROP TABLE pg_temp.analytics_batch, pg_temp.analytics_batch_sessions,
           pg_temp.analytics_batch_changes, pg_temp.analytics_batch_deltas;
