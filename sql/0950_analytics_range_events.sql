-- The analytics projection's events of one range of the log (src/lufy/analytics/projections.sql):
-- every handled event after (after_tx, after_pos) up to (upto_tx, upto_pos) in log order but the
-- stream grants (`batch_grants` reads those), numbered `n` in that order, its payload fields as
-- the JSON's text (`listened_ms` 0 when absent, `weight` 1 when absent or 0, as
-- `metadata.weight or 1.0`). One definition for the statements that read a range: the fold
-- straight from the log (`batch_sessions`, which compares the text of ids and casts once per
-- session) and the typed copy for the fold in log order (`batch_events`). A plain SQL function
-- (not STRICT, STABLE, one SELECT): the planner inlines it into each statement, so a range is
-- still one walk of events_transaction_order.
CREATE OR REPLACE FUNCTION lufy.analytics_range_events(
    after_tx xid8, after_pos bigint, upto_tx xid8, upto_pos bigint, types text[]
)
RETURNS TABLE (
    n bigint, event_id uuid, type text, occurred_at timestamptz, recorded_at timestamptz,
    session_id text, track_id text, artist_id text, listener_key text, listened_ms bigint,
    source text, country text, device text, weight float8, grant_id text, signed_in boolean,
    imported boolean
)
LANGUAGE sql STABLE AS $$
SELECT row_number() OVER (ORDER BY e.transaction_id, e.global_position),
       e.event_id, e.type, e.occurred_at, e.recorded_at,
       e.data ->> 'session_id', e.data ->> 'track_id', e.data ->> 'artist_id',
       e.data ->> 'listener_key', coalesce((e.data ->> 'listened_ms')::bigint, 0),
       e.data ->> 'source', e.data ->> 'country', e.data ->> 'device',
       coalesce(nullif((e.metadata ->> 'weight')::float8, 0), 1),
       e.data ->> 'grant_id', (e.data ->> 'listener_id') IS NOT NULL,
       coalesce((e.data ->> 'imported')::boolean, false)
FROM lufy.events e
WHERE (e.transaction_id, e.global_position) > (after_tx, after_pos)
  AND (e.transaction_id, e.global_position) <= (upto_tx, upto_pos)
  -- `|| ''` keeps the planner on events_transaction_order (the range), off events_type_order.
  AND (e.type || '') = ANY(types)
  AND e.type <> 'catalog.stream_authorized'
$$;
