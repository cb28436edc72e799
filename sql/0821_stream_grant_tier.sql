-- lufy.issue_stream_grant(..., p_subscriptions): the stream grant and the listener's tier read in
-- one statement, so a grant is one round trip to PostgreSQL.
--
-- The grant of sql/0820_stream_grant.sql (called as is: decide, append, asynchronous commit),
-- plus, when `p_subscriptions` is true and the track was
-- granted to a signed-in listener, that listener's subscriptions as lufy.payment_subscriptions
-- holds them (their newest state; read under the listener's RLS context, which this function
-- binds: a listener sees their own rows only), newest first as the payments context's
-- `user_subscriptions` query orders them. The caller works the tier out of them with the
-- payments context's own rule (`lufy.payments.model.plan_for`): no plan logic lives here.
-- The tier's read used to be a second statement pipelined behind the grant, and the commit a
-- second round trip (psycopg fetches a pipeline's results with a flush, then syncs); one
-- statement in autocommit mode is Bind/Execute/Sync: its answer arrives committed.
--
-- The ten-argument function of 0820 stays, for API processes of the previous release during a
-- rolling deploy.
--
-- SECURITY INVOKER: it reads and writes with the caller's rights and RLS.
CREATE FUNCTION lufy.issue_stream_grant(
    p_track_id uuid, p_user_id uuid, p_role text,
    p_stream_type text, p_event_id uuid, p_type text, p_schema_version int,
    p_data jsonb, p_metadata jsonb, p_occurred_at timestamptz, p_subscriptions boolean
) RETURNS TABLE (
    visible boolean, status text, granted boolean,
    sub_status text[], sub_period_end timestamptz[], sub_past_due_since timestamptz[]
)
LANGUAGE plpgsql AS $$
DECLARE
    g record;
BEGIN
    -- The decision and the append (0820): it binds the caller for RLS, for this transaction.
    SELECT d.visible, d.status, d.granted INTO g
    FROM lufy.issue_stream_grant(p_track_id, p_user_id, p_role, p_stream_type, p_event_id,
                                 p_type, p_schema_version, p_data, p_metadata, p_occurred_at) d;
    IF NOT g.granted OR NOT p_subscriptions OR p_user_id IS NULL THEN
        RETURN QUERY SELECT g.visible, g.status, g.granted, NULL::text[], NULL::timestamptz[],
                            NULL::timestamptz[];
        RETURN;
    END IF;
    RETURN QUERY
    SELECT g.visible, g.status, g.granted,
           coalesce(array_agg(s.status ORDER BY s.as_of DESC, s.subscription_id), '{}'),
           coalesce(array_agg(s.current_period_end ORDER BY s.as_of DESC, s.subscription_id),
                    '{}'),
           coalesce(array_agg(s.past_due_since ORDER BY s.as_of DESC, s.subscription_id), '{}')
    FROM lufy.payment_subscriptions s
    WHERE s.user_id = p_user_id;
END $$;
COMMENT ON FUNCTION lufy.issue_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz, boolean) IS
    'A stream grant: the track read under RLS and, when it may be streamed, its catalog.stream_authorized event appended (asynchronous commit) and, when asked, the listener''s subscriptions for the tier.';
REVOKE ALL ON FUNCTION lufy.issue_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lufy.issue_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz, boolean) TO lufy_app;
