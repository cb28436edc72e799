-- Streams per minute of the last day, for /api/dashboard/realtime (lufy/analytics/minutes.py).
-- Part of the analytics projection (its tables are listed in lufy/analytics/projections.py):
-- kept by the projection with each changed session's streams after minus before, at the UTC
-- minute of its start, per artist ('a', owner = the artist) and for the platform ('p', owner =
-- the nil uuid, artist_id NULL). Only minutes of the last day are kept (`minutes.add_batch`
-- drops the older ones and ignores changes to them): realtime reads the last 30 minutes.
CREATE TABLE IF NOT EXISTS session_minutes (
    scope     text        NOT NULL CHECK (scope IN ('a', 'p')),
    owner     uuid        NOT NULL,
    minute    timestamptz NOT NULL,
    artist_id uuid,
    streams   double precision NOT NULL,
    PRIMARY KEY (scope, owner, minute)
);
CREATE INDEX IF NOT EXISTS session_minutes_minute ON session_minutes (minute);

ALTER TABLE session_minutes ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_minutes FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS analytics_owner ON session_minutes;
CREATE POLICY analytics_owner ON session_minutes USING (
    artist_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
    OR current_user = 'lufy_analyst');
GRANT SELECT, INSERT, UPDATE, DELETE ON session_minutes TO lufy_app;

-- Filled once from the sessions of the last day where it arrives next to existing data (the
-- projection keeps it from then on).
INSERT INTO session_minutes (scope, owner, minute, artist_id, streams)
SELECT o.scope, o.owner, date_bin('1 minute', s.started_at, timestamptz '1970-01-01 00:00:00+00'),
       o.artist_id, sum(s.weight)
FROM playback_sessions s
CROSS JOIN LATERAL (VALUES ('a', s.artist_id, s.artist_id),
                           ('p', '00000000-0000-0000-0000-000000000000'::uuid, NULL::uuid))
    AS o(scope, owner, artist_id)
WHERE s.is_stream AND s.started_at >= now() - interval '1 day'
  AND NOT EXISTS (SELECT 1 FROM session_minutes)
GROUP BY 1, 2, 3, 4;
