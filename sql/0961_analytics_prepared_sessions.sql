-- A rebuild also folds each page's playback events per session a page ahead (`prepare_range`,
-- src/lufy/analytics/projections.sql `prepare_sessions`): what the events say about each
-- session, in two parts per session, the events before its first event naming both track and
-- artist (`valid` false) and from that event on (`valid` true). The page's apply then only has
-- to combine the parts each session needs (both for a session stored before, the valid part
-- for a new one: `batch_sessions_prepared`), instead of folding the page's events. Scratch
-- space like sql/0960_analytics_prepared_pages.sql: UNLOGGED, discarded with the typed events.
CREATE UNLOGGED TABLE IF NOT EXISTS lufy.analytics_prepared_sessions (
    page           text        NOT NULL,
    session_id     text,
    valid          boolean     NOT NULL,
    valid_from     bigint,
    claim_n        bigint,
    start_event_at timestamptz,
    first_event_at timestamptz,
    listened_ms    bigint,
    completed      boolean,
    skipped        boolean,
    source         text,
    source_hi      text,
    source_empty   boolean,
    country        text,
    country_hi     text,
    country_empty  boolean,
    device         text,
    device_hi      text,
    device_empty   boolean,
    grant_id       text,
    grant_hi       text,
    weight         float8,
    signed_in      boolean,
    imported       boolean,
    grant_deadline timestamptz
);
CREATE INDEX IF NOT EXISTS analytics_prepared_sessions_page
    ON lufy.analytics_prepared_sessions (page);
GRANT SELECT, INSERT, DELETE ON lufy.analytics_prepared_sessions TO lufy_app;
