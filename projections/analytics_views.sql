-- Schema analytics: what the role lufy_analyst reads (CONTRACT.md section 5). No e-mail
-- addresses, IPs or raw user ids: listeners appear only as listener_key, an HMAC under a key
-- analysts cannot read. Names are qualified: these objects always read the live schema lufy.

CREATE OR REPLACE VIEW analytics.playback_sessions AS
SELECT session_id, track_id, artist_id, listener_key, started_at, listened_ms, is_stream,
       completed, skipped, source, country, device, weight, verified
FROM lufy.playback_sessions;
COMMENT ON VIEW analytics.playback_sessions IS
    'One row per playback session (all playback.* events sharing a session_id): its track, '
    'artist, keyed-hash listener, start (its playback.started, else its first event), largest '
    'listened_ms, whether it is a stream (verified and listened_ms >= 30000), completed, '
    'skipped, source, country, device class, weight (1 / sample rate) and whether it is '
    'verified (imported with lufy events import, or backed by a stream grant Lufy issued for '
    'the track to that listener, claimed by no other session, issued at least listened_ms '
    'before the events arrived). Live: follows the log within seconds.';

CREATE OR REPLACE VIEW analytics.events AS
SELECT e.global_position, e.event_id, e.type, e.stream_type, e.occurred_at, e.recorded_at,
       CASE WHEN e.stream_type = 'analytics'
            -- `properties` is free-form client input that may carry personal data.
            THEN e.data - 'listener_id' - 'anonymous_id' - 'properties' END AS data,
       (e.metadata ->> 'weight')::double precision AS weight
FROM lufy.events e;
COMMENT ON VIEW analytics.events IS
    'One row per event of the log, without personal data: analytics events with their payload '
    '(listener as listener_key only, no user or anonymous id, no free-form properties), every '
    'other event with its type '
    'and times but no payload. Live.';

DROP MATERIALIZED VIEW IF EXISTS analytics.artist_daily;
DROP MATERIALIZED VIEW IF EXISTS analytics.track_daily;

CREATE MATERIALIZED VIEW analytics.track_daily AS
WITH sums AS (
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.track_id, r.artist_id,
           sum(r.streams) AS streams, sum(r.listen_ms) / 1000 AS listen_seconds,
           sum(r.starts) AS starts, sum(r.completions) AS completions, sum(r.skips) AS skips
    FROM lufy.track_rollup_15m r
    GROUP BY 1, 2, 3
), listeners AS (
    SELECT day, track_id, sum(weight) AS listeners
    FROM (SELECT (s.started_at AT TIME ZONE 'UTC')::date AS day, s.track_id, s.listener_key,
                 max(s.weight) AS weight
          FROM lufy.playback_sessions s WHERE s.is_stream GROUP BY 1, 2, 3) per_listener
    GROUP BY 1, 2
)
SELECT s.day, s.track_id, s.artist_id, s.streams, coalesce(l.listeners, 0) AS listeners,
       s.listen_seconds, s.starts, s.completions, s.skips
FROM sums s LEFT JOIN listeners l USING (day, track_id)
WHERE s.starts <> 0 OR s.streams <> 0;
CREATE UNIQUE INDEX track_daily_key ON analytics.track_daily (day, track_id);
COMMENT ON MATERIALIZED VIEW analytics.track_daily IS
    'One row per track and UTC day with at least one playback session started: streams, '
    'distinct listeners with a stream, listen_seconds, sessions started, completed and skipped '
    '(sums of weights). Materialized: refreshed by the analytics-refresh job and by '
    '`lufy analytics refresh`; see analytics.freshness for the last refresh.';

CREATE MATERIALIZED VIEW analytics.artist_daily AS
WITH sums AS (
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.artist_id,
           sum(r.streams) AS streams, sum(r.listen_ms) / 1000 AS listen_seconds,
           sum(r.likes) AS likes
    FROM lufy.track_rollup_15m r GROUP BY 1, 2
), follows AS (
    SELECT (f.bucket AT TIME ZONE 'UTC')::date AS day, f.artist_id, sum(f.follows) AS followers
    FROM lufy.artist_rollup_15m f GROUP BY 1, 2
), listeners AS (
    SELECT day, artist_id, sum(weight) AS listeners
    FROM (SELECT (s.started_at AT TIME ZONE 'UTC')::date AS day, s.artist_id, s.listener_key,
                 max(s.weight) AS weight
          FROM lufy.playback_sessions s WHERE s.is_stream GROUP BY 1, 2, 3) per_listener
    GROUP BY 1, 2
)
SELECT day, artist_id, coalesce(s.streams, 0) AS streams, coalesce(l.listeners, 0) AS listeners,
       coalesce(s.listen_seconds, 0) AS listen_seconds, coalesce(s.likes, 0) AS likes,
       coalesce(f.followers, 0) AS followers
FROM sums s
FULL JOIN follows f USING (day, artist_id)
LEFT JOIN listeners l USING (day, artist_id);
CREATE UNIQUE INDEX artist_daily_key ON analytics.artist_daily (day, artist_id);
COMMENT ON MATERIALIZED VIEW analytics.artist_daily IS
    'One row per artist and UTC day with any activity: streams, distinct listeners with a '
    'stream, listen_seconds, net likes of their tracks and net new followers (sums of weights). '
    'Materialized: refreshed by the analytics-refresh job and by `lufy analytics refresh`; see '
    'analytics.freshness for the last refresh.';

CREATE TABLE IF NOT EXISTS lufy.analytics_refreshes (
    view_name    text PRIMARY KEY,
    refreshed_at timestamptz NOT NULL,
    seconds      double precision NOT NULL
);
CREATE OR REPLACE VIEW analytics.freshness AS
SELECT view_name, refreshed_at, seconds FROM lufy.analytics_refreshes;
COMMENT ON VIEW analytics.freshness IS
    'One row per materialized view of schema analytics: when it was last refreshed and how long '
    'the refresh took.';

-- lufy_app owns nothing, so it refreshes through this function, owned by the migration owner.
CREATE OR REPLACE FUNCTION analytics.refresh_views() RETURNS TABLE (view_name text, seconds float8)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text;
    t0 timestamptz;
BEGIN
    -- The owner may be subject to FORCE ROW LEVEL SECURITY: read as the projector does.
    PERFORM set_config('app.current_role', 'system', true);
    FOREACH v IN ARRAY ARRAY['track_daily', 'artist_daily'] LOOP
        t0 := clock_timestamp();
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY analytics.%I', v);
        INSERT INTO lufy.analytics_refreshes AS r (view_name, refreshed_at, seconds)
        VALUES (v, t0, extract(epoch FROM clock_timestamp() - t0))
        ON CONFLICT ON CONSTRAINT analytics_refreshes_pkey
        DO UPDATE SET refreshed_at = excluded.refreshed_at, seconds = excluded.seconds;
        view_name := v;
        seconds := extract(epoch FROM clock_timestamp() - t0);
        RETURN NEXT;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION analytics.refresh_views() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.refresh_views() TO lufy_app;

GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO lufy_analyst;
