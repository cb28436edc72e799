-- A rebuild of the analytics projection types each page's events (projections.sql,
-- `typed_events`: the payload fields extracted from jsonb and cast) on its reading connection,
-- one page ahead, while its applying connection folds the page before (rebuild_pages.py,
-- `AnalyticsProjection.stage_range`): the typing was about a quarter of the applying
-- connection's work, and the other core was mostly idle. These are the pages typed ahead, a few
-- slots used in turn (`RangeProjection.rebuild_stage_slots`): UNLOGGED (work data, written again
-- by the next rebuild), owned by the migration owner (lufy_app owns nothing), without RLS (they
-- hold what lufy.events holds, which lufy_app reads anyway). The columns are those of
-- `typed_events`, in its order (tests/integration/test_analytics_rebuild_pages.py checks it).
DO $$
DECLARE
    slot int;
BEGIN
    FOR slot IN 0..2 LOOP
        EXECUTE format($t$
            CREATE UNLOGGED TABLE IF NOT EXISTS lufy.%I (
                n            bigint,
                event_id     uuid,
                type         text,
                playback     boolean,
                occurred_at  timestamptz,
                recorded_at  timestamptz,
                session_id   text,
                track_id     uuid,
                artist_id    uuid,
                listener_key text,
                listened_ms  bigint,
                source       text,
                country      text,
                device       text,
                weight       float8,
                grant_id     uuid,
                signed_in    boolean,
                imported     boolean
            )$t$, 'analytics_rebuild_page_' || slot);
        EXECUTE format('GRANT SELECT, INSERT, TRUNCATE ON lufy.%I TO lufy_app',
                       'analytics_rebuild_page_' || slot);
    END LOOP;
END $$;
