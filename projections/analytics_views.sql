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
       (e.metadata ->> 'weight')::double precision AS weight,
       -- Commit order: events become visible in (transaction_id, global_position) order below
       -- analytics.safe_position(), never by global_position alone (docs/analytics.md).
       e.transaction_id
FROM lufy.events e;
COMMENT ON VIEW analytics.events IS
    'One row per event of the log, without personal data: analytics events with their payload '
    '(listener as listener_key only, no user or anonymous id, no free-form properties), every '
    'other event with its type '
    'and times but no payload. Live. Extract incrementally by transaction_id: rows with '
    'transaction_id < analytics.safe_position() are final, read in the same statement.';
-- `lufy events export` reads this view (as the app role), so it exports exactly what analysts see.
GRANT SELECT ON analytics.events TO lufy_app;

-- analytics.track_daily and analytics.artist_daily: views over tables that the refresh keeps up
-- to date incrementally. The analytics projection marks every UTC day whose rollups or sessions
-- it changed (lufy.analytics_dirty_days); a refresh recomputes only those days and clears them.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'analytics' AND c.relname = 'artist_daily' AND c.relkind = 'm')
    THEN
        DROP MATERIALIZED VIEW analytics.artist_daily;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'analytics' AND c.relname = 'track_daily' AND c.relkind = 'm')
    THEN
        DROP MATERIALIZED VIEW analytics.track_daily;
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS lufy.analytics_track_daily (
    day            date             NOT NULL,
    track_id       uuid             NOT NULL,
    artist_id      uuid             NOT NULL,
    streams        double precision NOT NULL,
    listeners      double precision NOT NULL,
    listen_seconds double precision NOT NULL,
    starts         double precision NOT NULL,
    completions    double precision NOT NULL,
    skips          double precision NOT NULL,
    PRIMARY KEY (day, track_id)
);
CREATE TABLE IF NOT EXISTS lufy.analytics_artist_daily (
    day            date             NOT NULL,
    artist_id      uuid             NOT NULL,
    streams        double precision NOT NULL,
    listeners      double precision NOT NULL,
    listen_seconds double precision NOT NULL,
    likes          double precision NOT NULL,
    followers      double precision NOT NULL,
    PRIMARY KEY (day, artist_id)
);
-- Written only by analytics.refresh_views() (owner); nobody else needs them but analysts, who
-- read them through the views below.
REVOKE ALL ON lufy.analytics_track_daily, lufy.analytics_artist_daily FROM PUBLIC;

CREATE OR REPLACE VIEW analytics.track_daily AS
SELECT day, track_id, artist_id, streams, listeners, listen_seconds, starts, completions, skips
FROM lufy.analytics_track_daily;
COMMENT ON VIEW analytics.track_daily IS
    'One row per track and UTC day with at least one playback session started: streams, '
    'distinct listeners with a stream, listen_seconds, sessions started, completed and skipped '
    '(sums of weights). Refreshed incrementally (only the days that changed) by the '
    'analytics-refresh job and by `lufy analytics refresh`; see analytics.freshness for the '
    'last refresh.';

CREATE OR REPLACE VIEW analytics.artist_daily AS
SELECT day, artist_id, streams, listeners, listen_seconds, likes, followers
FROM lufy.analytics_artist_daily;
COMMENT ON VIEW analytics.artist_daily IS
    'One row per artist and UTC day with any activity: streams, distinct listeners with a '
    'stream, listen_seconds, net likes of their tracks and net new followers (sums of weights). '
    'Refreshed incrementally (only the days that changed) by the analytics-refresh job and by '
    '`lufy analytics refresh`; see analytics.freshness for the last refresh.';

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
-- It takes the days the projection marked (locking them: a projector batch marking one of them
-- again waits for this commit and marks it anew), recomputes exactly those days of both tables
-- from the rollups and the sessions, and clears the marks, all in one transaction.
DROP FUNCTION IF EXISTS analytics.refresh_views();
CREATE FUNCTION analytics.refresh_views() RETURNS TABLE (view_name text, seconds float8)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t0 timestamptz;
    days date[];
    lo timestamptz;
    hi timestamptz;
BEGIN
    -- The owner may be subject to FORCE ROW LEVEL SECURITY: read as the projector does.
    PERFORM set_config('app.current_role', 'system', true);
    t0 := clock_timestamp();
    SELECT coalesce(array_agg(d.day ORDER BY d.day), '{}') INTO days
    FROM (SELECT m.day FROM lufy.analytics_dirty_days m ORDER BY m.day FOR UPDATE) d;
    lo := (days[1]::timestamp AT TIME ZONE 'UTC');
    hi := (days[cardinality(days)]::timestamp AT TIME ZONE 'UTC') + interval '1 day';

    DELETE FROM lufy.analytics_track_daily t WHERE t.day = ANY(days);
    INSERT INTO lufy.analytics_track_daily
    WITH sums AS (
        SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.track_id, r.artist_id,
               sum(r.streams) AS streams, sum(r.listen_ms) / 1000 AS listen_seconds,
               sum(r.starts) AS starts, sum(r.completions) AS completions,
               sum(r.skips) AS skips
        FROM lufy.track_rollup_15m r
        WHERE r.bucket >= lo AND r.bucket < hi
          AND (r.bucket AT TIME ZONE 'UTC')::date = ANY(days)
        GROUP BY 1, 2, 3
    ), listeners AS (
        SELECT p.day, p.track_id, sum(p.weight) AS listeners
        FROM (SELECT (s.started_at AT TIME ZONE 'UTC')::date AS day, s.track_id,
                     s.listener_key, max(s.weight) AS weight
              FROM lufy.playback_sessions s
              WHERE s.is_stream AND s.started_at >= lo AND s.started_at < hi
                AND (s.started_at AT TIME ZONE 'UTC')::date = ANY(days)
              GROUP BY 1, 2, 3) p
        GROUP BY 1, 2
    )
    SELECT s.day, s.track_id, s.artist_id, s.streams, coalesce(l.listeners, 0),
           s.listen_seconds, s.starts, s.completions, s.skips
    FROM sums s LEFT JOIN listeners l ON l.day = s.day AND l.track_id = s.track_id
    WHERE s.starts <> 0 OR s.streams <> 0;
    INSERT INTO lufy.analytics_refreshes AS r (view_name, refreshed_at, seconds)
    VALUES ('track_daily', t0, extract(epoch FROM clock_timestamp() - t0))
    ON CONFLICT ON CONSTRAINT analytics_refreshes_pkey
    DO UPDATE SET refreshed_at = excluded.refreshed_at, seconds = excluded.seconds;
    view_name := 'track_daily';
    seconds := extract(epoch FROM clock_timestamp() - t0);
    RETURN NEXT;

    t0 := clock_timestamp();
    DELETE FROM lufy.analytics_artist_daily a WHERE a.day = ANY(days);
    INSERT INTO lufy.analytics_artist_daily
    WITH sums AS (
        SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.artist_id,
               sum(r.streams) AS streams, sum(r.listen_ms) / 1000 AS listen_seconds,
               sum(r.likes) AS likes
        FROM lufy.track_rollup_15m r
        WHERE r.bucket >= lo AND r.bucket < hi
          AND (r.bucket AT TIME ZONE 'UTC')::date = ANY(days)
        GROUP BY 1, 2
    ), follows AS (
        SELECT (f.bucket AT TIME ZONE 'UTC')::date AS day, f.artist_id,
               sum(f.follows) AS followers
        FROM lufy.artist_rollup_15m f
        WHERE f.bucket >= lo AND f.bucket < hi
          AND (f.bucket AT TIME ZONE 'UTC')::date = ANY(days)
        GROUP BY 1, 2
    ), listeners AS (
        SELECT p.day, p.artist_id, sum(p.weight) AS listeners
        FROM (SELECT (s.started_at AT TIME ZONE 'UTC')::date AS day, s.artist_id,
                     s.listener_key, max(s.weight) AS weight
              FROM lufy.playback_sessions s
              WHERE s.is_stream AND s.started_at >= lo AND s.started_at < hi
                AND (s.started_at AT TIME ZONE 'UTC')::date = ANY(days)
              GROUP BY 1, 2, 3) p
        GROUP BY 1, 2
    )
    SELECT day, artist_id, coalesce(s.streams, 0), coalesce(l.listeners, 0),
           coalesce(s.listen_seconds, 0), coalesce(s.likes, 0), coalesce(f.followers, 0)
    FROM sums s
    FULL JOIN follows f USING (day, artist_id)
    LEFT JOIN listeners l USING (day, artist_id);
    DELETE FROM lufy.analytics_dirty_days m WHERE m.day = ANY(days);
    INSERT INTO lufy.analytics_refreshes AS r (view_name, refreshed_at, seconds)
    VALUES ('artist_daily', t0, extract(epoch FROM clock_timestamp() - t0))
    ON CONFLICT ON CONSTRAINT analytics_refreshes_pkey
    DO UPDATE SET refreshed_at = excluded.refreshed_at, seconds = excluded.seconds;
    view_name := 'artist_daily';
    seconds := extract(epoch FROM clock_timestamp() - t0);
    RETURN NEXT;
END $$;
REVOKE ALL ON FUNCTION analytics.refresh_views() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.refresh_views() TO lufy_app;

GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO lufy_analyst;
