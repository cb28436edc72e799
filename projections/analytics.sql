-- Analytics read models, maintained by the async projections of lufy/analytics/projections.py.
-- Table names are unqualified: the migrator and the projection runner set search_path to the
-- live schema (lufy) or to a rebuild's shadow schema. Counts are sums of event weights
-- (1 / sample rate), so they are unbiased estimates when sampling is on.

-- One row per playback session (all playback.* events sharing a session_id).
CREATE TABLE IF NOT EXISTS playback_sessions (
    session_id     text        PRIMARY KEY,
    track_id       uuid        NOT NULL,
    artist_id      uuid        NOT NULL,
    listener_key   text        NOT NULL,
    -- Earliest playback.started, and earliest event of any playback type: the session starts
    -- at the first when there is one (CONTRACT.md section 4), else at the second.
    start_event_at timestamptz,
    first_event_at timestamptz NOT NULL,
    started_at     timestamptz GENERATED ALWAYS AS (coalesce(start_event_at, first_event_at)) STORED,
    listened_ms    bigint      NOT NULL DEFAULT 0,
    -- A verified stream (CONTRACT.md section 4): only these count as streams and listeners.
    is_stream      boolean     GENERATED ALWAYS AS (verified AND listened_ms >= 30000) STORED,
    completed      boolean     NOT NULL DEFAULT false,
    skipped        boolean     NOT NULL DEFAULT false,
    source         text,
    country        text,
    device         text,
    weight         double precision NOT NULL DEFAULT 1,
    -- What decides `verified` (lufy/analytics/projections.py): the first grant id the events
    -- carried, whether a signed-in listener or `lufy events import` sent any of them, and the
    -- latest moment the grant may have been issued (min over events of arrival - listened_ms).
    grant_id       uuid,
    signed_in      boolean     NOT NULL DEFAULT false,
    imported       boolean     NOT NULL DEFAULT false,
    grant_deadline timestamptz,
    verified       boolean     NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS playback_sessions_artist_started
    ON playback_sessions (artist_id, started_at);
CREATE INDEX IF NOT EXISTS playback_sessions_started ON playback_sessions (started_at);
CREATE INDEX IF NOT EXISTS playback_sessions_track_started
    ON playback_sessions (track_id, started_at);
-- A listener's sessions: whether they still have a stream in a block (listener bitmaps).
CREATE INDEX IF NOT EXISTS playback_sessions_listener_started
    ON playback_sessions (listener_key, started_at);

-- Per track and 15-minute UTC bucket (of a session's start, or of a like's occurred_at).
-- 15 minutes so that hours and days of every real time zone are unions of whole buckets.
CREATE TABLE IF NOT EXISTS track_rollup_15m (
    track_id    uuid        NOT NULL,
    bucket      timestamptz NOT NULL,
    artist_id   uuid        NOT NULL,
    streams     double precision NOT NULL DEFAULT 0,
    listen_ms   double precision NOT NULL DEFAULT 0,
    starts      double precision NOT NULL DEFAULT 0,
    completions double precision NOT NULL DEFAULT 0,
    skips       double precision NOT NULL DEFAULT 0,
    likes       double precision NOT NULL DEFAULT 0,
    -- Follows of the artist made from this track (the event named the track).
    follows     double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (track_id, bucket)
);
CREATE INDEX IF NOT EXISTS track_rollup_15m_artist_bucket ON track_rollup_15m (artist_id, bucket);
CREATE INDEX IF NOT EXISTS track_rollup_15m_bucket ON track_rollup_15m (bucket);

-- Net follows per artist and 15-minute UTC bucket of occurred_at.
CREATE TABLE IF NOT EXISTS artist_rollup_15m (
    artist_id uuid        NOT NULL,
    bucket    timestamptz NOT NULL,
    follows   double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (artist_id, bucket)
);
CREATE INDEX IF NOT EXISTS artist_rollup_15m_bucket ON artist_rollup_15m (bucket);

-- Likes and follows one by one (+weight or -weight), for the exact edges of ranges that do not
-- start or end on a 15-minute boundary (RFC 3339 instants, `24h`).
CREATE TABLE IF NOT EXISTS engagement_events (
    event_id    uuid        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('like', 'follow')),
    track_id    uuid,
    artist_id   uuid        NOT NULL,
    occurred_at timestamptz NOT NULL,
    delta       double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS engagement_events_artist_time ON engagement_events (artist_id, occurred_at);
CREATE INDEX IF NOT EXISTS engagement_events_time ON engagement_events (occurred_at);

-- Stream grants (catalog.stream_authorized with a grant_id): the track, the listener as a keyed
-- hash (NULL for an anonymous grant), when it was issued, and the sessions that claimed it.
CREATE TABLE IF NOT EXISTS stream_grants (
    grant_id     uuid        PRIMARY KEY,
    track_id     uuid        NOT NULL,
    listener_key text,
    granted_at   timestamptz NOT NULL,
    sessions     text[]      NOT NULL DEFAULT '{}'
);
ALTER TABLE stream_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE stream_grants FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS analytics_system ON stream_grants;
CREATE POLICY analytics_system ON stream_grants USING (
    (select current_setting('app.current_role', true)) IN ('admin', 'system'));
GRANT SELECT, INSERT, UPDATE, DELETE ON stream_grants TO lufy_app;

-- Dense integer ids of listener keys (lufy/analytics/listeners.py), assigned by the projection.
CREATE TABLE IF NOT EXISTS listener_ids (
    listener_key text    PRIMARY KEY,
    id           integer NOT NULL UNIQUE
);
ALTER TABLE listener_ids ENABLE ROW LEVEL SECURITY;
ALTER TABLE listener_ids FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS analytics_readers ON listener_ids;
CREATE POLICY analytics_readers ON listener_ids USING (
    (select current_setting('app.current_role', true)) IN ('admin', 'system', 'artist'));
GRANT SELECT, INSERT, UPDATE, DELETE ON listener_ids TO lufy_app;

-- Exact distinct listeners: per scope ('t' track, 'a' artist, 'p' platform with owner = the nil
-- uuid and artist_id NULL), dimension ('' or country/device/source with its key), UTC block of
-- time (level 'q' 15 minutes, 'h' hour, 's' six hours from 00/06/12/18, 'd' day; and 'o' the
-- hour from half past, 00:30 to 23:30, for the rows without dimension only: an hour of a zone
-- offset by a half hour, India's or Newfoundland's, is one row instead of four) and session
-- weight: the roaring bitmap (pyroaring serialization) of the ids of listeners with a stream
-- started in it, their number, and the streams (sum of weights).
CREATE TABLE IF NOT EXISTS listener_bitmaps (
    scope     text        NOT NULL CHECK (scope IN ('t', 'a', 'p')),
    owner     uuid        NOT NULL,
    dim       text        NOT NULL,
    key       text        NOT NULL,
    level     text        NOT NULL CHECK (level IN ('q', 'o', 'h', 's', 'd')),
    bucket    timestamptz NOT NULL,
    weight    double precision NOT NULL,
    artist_id uuid,
    streams   double precision NOT NULL,
    listeners integer     NOT NULL,
    bitmap    bytea       NOT NULL,
    PRIMARY KEY (scope, owner, dim, level, bucket, key, weight)
);
CREATE INDEX IF NOT EXISTS listener_bitmaps_artist
    ON listener_bitmaps (artist_id, scope, dim, level, bucket);

-- Session counters per scope ('t' track, 'a' artist, 'p' platform with owner = the nil uuid and
-- artist_id NULL) and UTC block of time (the levels of listener_bitmaps), of the sessions that
-- started in it (lufy/analytics/counters.py): the dashboard sums a few dozen of these rows for
-- any range instead of every 15-minute rollup row in it.
CREATE TABLE IF NOT EXISTS session_blocks (
    scope       text        NOT NULL CHECK (scope IN ('t', 'a', 'p')),
    owner       uuid        NOT NULL,
    level       text        NOT NULL CHECK (level IN ('q', 'o', 'h', 's', 'd')),
    bucket      timestamptz NOT NULL,
    artist_id   uuid,
    streams     double precision NOT NULL DEFAULT 0,
    listen_ms   double precision NOT NULL DEFAULT 0,
    starts      double precision NOT NULL DEFAULT 0,
    completions double precision NOT NULL DEFAULT 0,
    skips       double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, owner, level, bucket)
);
CREATE INDEX IF NOT EXISTS session_blocks_artist ON session_blocks (artist_id, scope, level, bucket);

-- Level 'o' (hours from half past) where the tables predate it; filled below.
ALTER TABLE listener_bitmaps DROP CONSTRAINT IF EXISTS listener_bitmaps_level_check,
    ADD CONSTRAINT listener_bitmaps_level_check CHECK (level IN ('q', 'o', 'h', 's', 'd'));
ALTER TABLE session_blocks DROP CONSTRAINT IF EXISTS session_blocks_level_check,
    ADD CONSTRAINT session_blocks_level_check CHECK (level IN ('q', 'o', 'h', 's', 'd'));

-- The blocks a session that started at `started` counts in, in session_blocks and
-- listener_bitmaps: its UTC block of each level, for its track, its artist and the platform
-- (12 rows), and its hour from half past ('o': 3 rows more, none from 23:30: a block lies in one
-- UTC day, as the reads assume). One definition for the projection's statements
-- (lufy/analytics/counters.sql, listeners.sql); a single SELECT, so the planner inlines it.
CREATE OR REPLACE FUNCTION session_block_keys(started timestamptz, track uuid, artist uuid)
RETURNS TABLE (scope text, owner uuid, artist_id uuid, level text, bucket timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT o.scope, o.owner, o.artist_id, l.level, date_bin(l.width, started, l.origin)
FROM (VALUES ('q', interval '15 minutes', timestamptz '1970-01-01 00:00:00+00'),
             ('o', interval '1 hour', timestamptz '1970-01-01 00:30:00+00'),
             ('h', interval '1 hour', timestamptz '1970-01-01 00:00:00+00'),
             ('s', interval '6 hours', timestamptz '1970-01-01 00:00:00+00'),
             ('d', interval '1 day', timestamptz '1970-01-01 00:00:00+00'))
    AS l(level, width, origin)
CROSS JOIN (VALUES ('t', track, artist), ('a', artist, artist),
                   ('p', '00000000-0000-0000-0000-000000000000'::uuid, NULL::uuid))
    AS o(scope, owner, artist_id)
WHERE l.level <> 'o'
   -- from 00:30 to 23:30 (a start before 00:30 or from 23:30 lies in none)
   OR started - date_bin('1 day', started, timestamptz '1970-01-01 00:30:00+00')
      < interval '23 hours'
$$;

-- Filled once from the sessions where it arrives next to existing data (the projection keeps it
-- from then on).
INSERT INTO session_blocks (scope, owner, level, bucket, artist_id, streams, listen_ms, starts,
                            completions, skips)
SELECT k.scope, k.owner, k.level, k.bucket, k.artist_id,
       sum(CASE WHEN s.is_stream THEN s.weight ELSE 0 END),
       sum(s.listened_ms * s.weight), sum(s.weight),
       sum(CASE WHEN s.completed THEN s.weight ELSE 0 END),
       sum(CASE WHEN s.skipped THEN s.weight ELSE 0 END)
FROM playback_sessions s
CROSS JOIN LATERAL session_block_keys(s.started_at, s.track_id, s.artist_id) AS k
WHERE NOT EXISTS (SELECT 1 FROM session_blocks)
GROUP BY 1, 2, 3, 4, 5;

-- The 15-minute rollup rows with likes or follows (the dashboard reads its other counters from
-- session_blocks).
CREATE INDEX IF NOT EXISTS track_rollup_15m_engagement ON track_rollup_15m (artist_id, bucket)
    WHERE likes <> 0 OR follows <> 0;

-- UTC days whose rollups or sessions changed since the last refresh of analytics.track_daily
-- and analytics.artist_daily (projections/analytics_views.sql recomputes only these).
CREATE TABLE IF NOT EXISTS analytics_dirty_days (
    day     date   PRIMARY KEY,
    changes bigint NOT NULL DEFAULT 1
);
GRANT SELECT, INSERT, UPDATE, DELETE ON analytics_dirty_days TO lufy_app;

-- An artist sees rows of their own tracks; admins, the projector ('system') and analysts (through
-- the views of schema analytics) see all.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['playback_sessions', 'track_rollup_15m', 'artist_rollup_15m',
                             'engagement_events', 'listener_bitmaps', 'session_blocks'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS analytics_owner ON %I', t);
        EXECUTE format($p$CREATE POLICY analytics_owner ON %I USING (
            artist_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
            OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
            OR current_user = 'lufy_analyst')$p$, t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO lufy_app', t);
    END LOOP;
END $$;
