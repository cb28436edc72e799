-- A rebuild of the analytics projection also folds each page typed ahead (slots of
-- sql/0950_analytics_rebuild_pages.sql) into sessions on its reading connection
-- (projections.sql `session_fold`, AnalyticsProjection.stage_range): the fold was the biggest
-- statement left to the applying connection. These are the folded pages, one slot per slot of
-- pages: UNLOGGED, owned by the migration owner, without RLS. The columns are those of
-- `session_fold`, in its order, the text fields compared in the "C" collation
-- (tests/integration/test_analytics_rebuild_pages.py checks it).
CREATE UNLOGGED TABLE IF NOT EXISTS lufy.analytics_rebuild_fold_0 (
    session_id     text,
    first_n        bigint,
    valid_from     bigint,
    claim_n        bigint,
    start_event_at timestamptz,
    first_event_at timestamptz,
    listened_ms    bigint,
    completed      boolean,
    skipped        boolean,
    source         text COLLATE "C",
    source_hi      text COLLATE "C",
    country        text COLLATE "C",
    country_hi     text COLLATE "C",
    device         text COLLATE "C",
    device_hi      text COLLATE "C",
    grant_id       text COLLATE "C",
    grant_hi       text COLLATE "C",
    weight         float8,
    signed_in      boolean,
    imported       boolean,
    grant_deadline timestamptz,
    v_track_id     uuid,
    v_artist_id    uuid,
    v_listener_key text
);
CREATE UNLOGGED TABLE IF NOT EXISTS lufy.analytics_rebuild_fold_1
    (LIKE lufy.analytics_rebuild_fold_0);
CREATE UNLOGGED TABLE IF NOT EXISTS lufy.analytics_rebuild_fold_2
    (LIKE lufy.analytics_rebuild_fold_0);
GRANT SELECT, INSERT, TRUNCATE
    ON lufy.analytics_rebuild_fold_0, lufy.analytics_rebuild_fold_1, lufy.analytics_rebuild_fold_2
    TO lufy_app;
