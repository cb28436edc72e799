-- The analytics projection's first statement over a range of the log types its events' payloads
-- (JSON) into columns (src/lufy/analytics/projections.sql, `batch_events`). That typing reads
-- only the log, so a rebuild does it a page ahead: while one backend applies a page, another
-- types the next one into `analytics_prepared_events` (its page recorded in
-- `analytics_prepared_pages`), and the page's apply takes the typed rows instead of typing them
-- again (`AnalyticsProjection.prepare_range`, `PageReader` in src/lufy/projections/
-- rebuild_pages.py). Live batches type their events themselves, with the same function.
--
-- The typed rows are a function of the range alone (every transaction in it has finished, and
-- events are never changed), so whoever applies a prepared range gets the rows it would have
-- typed. Both tables are UNLOGGED scratch space: crash recovery empties them, and a rebuild
-- discards what is left when it starts and when it ends.

-- Every handled event of a range (after < (transaction_id, global_position) <= upto, every
-- transaction in it finished) but stream grants, numbered in log order (`n`), its payload
-- fields typed once. `listened_ms` is 0 when absent, `weight` 1 when absent or 0 (as
-- `metadata.weight or 1.0`). Plain SQL, so the planner inlines it into the calling statement.
CREATE OR REPLACE FUNCTION lufy.analytics_typed_events(after_tx xid8, after_pos bigint,
                                                       upto_tx xid8, upto_pos bigint,
                                                       types text[])
RETURNS TABLE (n bigint, event_id uuid, type text, occurred_at timestamptz,
               recorded_at timestamptz, session_id text, track_id uuid, artist_id uuid,
               listener_key text, listened_ms bigint, source text, country text, device text,
               weight float8, grant_id uuid, signed_in boolean, imported boolean)
LANGUAGE sql STABLE AS $$
SELECT row_number() OVER (ORDER BY e.transaction_id, e.global_position),
       e.event_id, e.type, e.occurred_at, e.recorded_at,
       e.data ->> 'session_id',
       (e.data ->> 'track_id')::uuid,
       (e.data ->> 'artist_id')::uuid,
       e.data ->> 'listener_key',
       coalesce((e.data ->> 'listened_ms')::bigint, 0),
       e.data ->> 'source',
       e.data ->> 'country',
       e.data ->> 'device',
       coalesce(nullif((e.metadata ->> 'weight')::float8, 0), 1),
       (e.data ->> 'grant_id')::uuid,
       (e.data ->> 'listener_id') IS NOT NULL,
       coalesce((e.data ->> 'imported')::boolean, false)
FROM lufy.events e
WHERE (e.transaction_id, e.global_position) > (after_tx, after_pos)
  AND (e.transaction_id, e.global_position) <= (upto_tx, upto_pos)
  -- `|| ''` keeps the planner on events_transaction_order (the range), off events_type_order.
  AND (e.type || '') = ANY(types)
  AND e.type <> 'catalog.stream_authorized'
$$;
GRANT EXECUTE ON FUNCTION lufy.analytics_typed_events(xid8, bigint, xid8, bigint, text[])
    TO lufy_app;

-- The typed events of the prepared ranges, each range named by `page` (its bounds as text).
CREATE UNLOGGED TABLE IF NOT EXISTS lufy.analytics_prepared_events AS
SELECT ''::text AS page, t.*
FROM lufy.analytics_typed_events('0', 0, '0', 0, '{}') t
WITH NO DATA;
CREATE INDEX IF NOT EXISTS analytics_prepared_events_page
    ON lufy.analytics_prepared_events (page);
-- The prepared ranges (a range without handled events is prepared too: it has no row above).
CREATE UNLOGGED TABLE IF NOT EXISTS lufy.analytics_prepared_pages (
    page   text PRIMARY KEY,
    events bigint NOT NULL
);
GRANT SELECT, INSERT, DELETE ON lufy.analytics_prepared_events, lufy.analytics_prepared_pages
    TO lufy_app;
