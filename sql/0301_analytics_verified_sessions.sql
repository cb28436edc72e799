-- Playback sessions gain `verified` (CONTRACT.md section 4) and what decides it; `is_stream`
-- becomes "a verified stream". A fresh database gets these columns from
-- projections/analytics.sql; this brings an existing live table and its shadow copy along.
-- The views that read is_stream are dropped here and recreated by projections/analytics_views.sql
-- (re-applied right after, its definition having changed). Existing rows stay unverified until
-- the analytics projection (version 2) is rebuilt from the log, which the projector does by
-- itself on the version change.
DO $$
DECLARE
    s text;
BEGIN
    IF to_regclass('lufy.playback_sessions') IS NOT NULL THEN
        DROP VIEW IF EXISTS analytics.playback_sessions;
        DROP MATERIALIZED VIEW IF EXISTS analytics.artist_daily;
        DROP MATERIALIZED VIEW IF EXISTS analytics.track_daily;
    END IF;
    FOREACH s IN ARRAY ARRAY['lufy', 'lufy_shadow'] LOOP
        IF to_regclass(format('%I.playback_sessions', s)) IS NOT NULL THEN
            EXECUTE format(
                'ALTER TABLE %I.playback_sessions '
                'ADD COLUMN IF NOT EXISTS grant_id uuid, '
                'ADD COLUMN IF NOT EXISTS signed_in boolean NOT NULL DEFAULT false, '
                'ADD COLUMN IF NOT EXISTS imported boolean NOT NULL DEFAULT false, '
                'ADD COLUMN IF NOT EXISTS grant_deadline timestamptz, '
                'ADD COLUMN IF NOT EXISTS verified boolean NOT NULL DEFAULT false, '
                'DROP COLUMN IF EXISTS is_stream', s);
            EXECUTE format(
                'ALTER TABLE %I.playback_sessions ADD COLUMN is_stream boolean '
                'GENERATED ALWAYS AS (verified AND listened_ms >= 30000) STORED', s);
        END IF;
    END LOOP;
END $$;
