-- A stream's last version, read from the end of events_stream_version_key, and a stream grant
-- in one attempt (docs/media.md, "Streaming"; docs/benchmarks.md, "st-grant").
--
-- 1. lufy.append_to_stream (sql/0975) read the last version of a stream as max(stream_version).
--    In a function, PL/pgSQL runs that statement on a cached plan, and the grant's calls run on
--    generic plans (sql/0980): a plan made without the stream's id expects one row per stream
--    and reads the stream through events_stream_position, every one of its events, to take
--    their max. Measured on a track's grant stream: 450 µs per grant at 150 events, 1,040 µs at
--    2,550, growing with every play of the track. Written as the first row of the stream in
--    descending version order, with `stream_version IS NOT NULL` (the predicate of the partial
--    index events_stream_version_key, without which the planner cannot use it and sorts the
--    stream read through events_stream_position instead), the plan is a backward probe of
--    events_stream_version_key, one index leaf whatever the stream's length, on generic and
--    custom plans, with or without statistics. The function is otherwise unchanged.
-- 2. lufy.try_stream_grant: lufy.issue_stream_grant (sql/0820, sql/0821) in one function and
--    one INSERT, without lufy.append_to_stream: no nested PL/pgSQL call, no exception block
--    (each entry into one starts a subtransaction), no look for the event id before the
--    insert. It appends the grant at the stream's last version + 1 as one statement:
--    - a grant that another writer took the same version from meanwhile fails on the unique
--      index events_stream_version_key (unique_violation, nothing written): the caller
--      (lufy.catalog.grants) then calls lufy.issue_stream_grant, which appends after it;
--    - an event id already in the log (a retry of the same grant after a broken connection)
--      inserts nothing, and lufy.append_to_stream then answers it as before (the same grant:
--      a replay; another event: LU422).
--    The decision (the track read under the caller's RLS, published or the artist's own or an
--    admin's, ready), the asynchronous commit, the NOTIFY and the subscriptions read for the
--    tier are those of sql/0820 and sql/0821. lufy.issue_stream_grant stays, for the retry and
--    for API processes of the previous release during a rolling deploy.
CREATE OR REPLACE FUNCTION lufy.append_to_stream(
    p_stream_type text, p_stream_id text, p_expected bigint,
    p_event_ids uuid[], p_types text[], p_schema_versions int[], p_data jsonb[],
    p_metadata jsonb[], p_occurred_at timestamptz[]
) RETURNS TABLE (global_position bigint, stream_version bigint, transaction_id xid8,
                replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n        int := cardinality(p_event_ids);
    existing int;
    current  bigint;
    previous bigint;
    written  boolean := false;
BEGIN
    LOOP
        SELECT count(*) INTO existing FROM lufy.events e WHERE e.event_id = ANY (p_event_ids);
        IF existing > 0 THEN
            IF existing = n AND NOT EXISTS (
                SELECT 1
                FROM unnest(p_event_ids, p_types, p_data) AS x(event_id, type, data)
                JOIN lufy.events e ON e.event_id = x.event_id
                WHERE e.stream_type <> p_stream_type OR e.stream_id <> p_stream_id
                   OR e.type <> x.type OR e.data <> x.data
            ) THEN
                RETURN QUERY
                    SELECT e.global_position, e.stream_version, e.transaction_id, true
                    FROM unnest(p_event_ids) WITH ORDINALITY AS x(event_id, i)
                    JOIN lufy.events e ON e.event_id = x.event_id ORDER BY x.i;
                RETURN;
            END IF;
            RAISE EXCEPTION 'event id already used for a different event'
                USING ERRCODE = 'LU422';
        END IF;

        SELECT coalesce((SELECT e.stream_version FROM lufy.events e
                         WHERE e.stream_type = p_stream_type AND e.stream_id = p_stream_id
                           AND e.stream_version IS NOT NULL
                         ORDER BY e.stream_version DESC LIMIT 1), 0) INTO current;
        IF p_expected BETWEEN -1 AND 0 AND current > 0 THEN
            RAISE EXCEPTION 'stream %/% already exists', p_stream_type, p_stream_id
                USING ERRCODE = 'LU409';
        ELSIF p_expected > 0 AND current <> p_expected THEN
            RAISE EXCEPTION 'stream %/% is not at version %', p_stream_type, p_stream_id, p_expected
                USING ERRCODE = 'LU409';
        ELSIF current IS NOT DISTINCT FROM previous THEN
            -- The last look failed on the index, but this snapshot does not see the winner.
            RAISE EXCEPTION 'stream %/% was written concurrently; retry', p_stream_type, p_stream_id
                USING ERRCODE = 'LU409';
        END IF;
        previous := current;

        BEGIN
            INSERT INTO lufy.events AS e (event_id, stream_type, stream_id, stream_version, type,
                                          schema_version, data, metadata, occurred_at)
            SELECT x.event_id, p_stream_type, p_stream_id, current + x.i, x.type,
                   x.schema_version, x.data, x.metadata, coalesce(x.occurred_at, now())
            FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_metadata,
                        p_occurred_at)
                 WITH ORDINALITY AS x(event_id, type, schema_version, data, metadata,
                                      occurred_at, i)
            ORDER BY x.i;
            written := true;
        EXCEPTION WHEN unique_violation THEN
            -- Another writer took the version or an id meanwhile (and has committed): look again.
            NULL;
        END;
        EXIT WHEN written;
    END LOOP;

    RETURN QUERY
        SELECT e.global_position, e.stream_version, e.transaction_id, false
        FROM unnest(p_event_ids) WITH ORDINALITY AS x(event_id, i)
        JOIN lufy.events e ON e.event_id = x.event_id ORDER BY x.i;
    PERFORM pg_notify('lufy_events', '');
END $$;


CREATE FUNCTION lufy.try_stream_grant(
    p_track_id uuid, p_user_id uuid, p_role text,
    p_stream_type text, p_event_id uuid, p_type text, p_schema_version int,
    p_data jsonb, p_metadata jsonb, p_occurred_at timestamptz, p_subscriptions boolean
) RETURNS TABLE (
    visible boolean, status text, granted boolean,
    sub_status text[], sub_period_end timestamptz[], sub_past_due_since timestamptz[]
)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    t record;
BEGIN
    IF p_user_id IS NOT NULL THEN
        PERFORM set_config('app.current_user_id', p_user_id::text, true),
                set_config('app.current_role', coalesce(p_role, ''), true);
    END IF;
    SELECT tr.artist_id, tr.status, tr.published, tr.deleted_at INTO t
    FROM lufy.tracks tr WHERE tr.id = p_track_id;
    IF NOT FOUND OR t.deleted_at IS NOT NULL OR NOT (
        coalesce(t.published, false)
        OR t.artist_id IS NOT DISTINCT FROM p_user_id AND p_user_id IS NOT NULL
        OR coalesce(p_role, '') = 'admin'
    ) THEN
        RETURN QUERY SELECT false, NULL::text, false, NULL::text[], NULL::timestamptz[],
                            NULL::timestamptz[];
        RETURN;
    END IF;
    IF t.status IS DISTINCT FROM 'ready' THEN
        RETURN QUERY SELECT true, t.status::text, false, NULL::text[], NULL::timestamptz[],
                            NULL::timestamptz[];
        RETURN;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type,
                             schema_version, data, metadata, occurred_at)
    SELECT p_event_id, p_stream_type, p_track_id::text,
           coalesce((SELECT e.stream_version FROM lufy.events e
                     WHERE e.stream_type = p_stream_type AND e.stream_id = p_track_id::text
                       AND e.stream_version IS NOT NULL
                     ORDER BY e.stream_version DESC LIMIT 1), 0) + 1,
           p_type, p_schema_version, p_data, p_metadata, coalesce(p_occurred_at, now())
    WHERE NOT EXISTS (SELECT 1 FROM lufy.events x WHERE x.event_id = p_event_id);
    IF FOUND THEN
        PERFORM pg_notify('lufy_events', '');
    ELSE
        -- The id is in the log already: a replay of this grant, or LU422 (append_to_stream).
        PERFORM lufy.append_to_stream(
            p_stream_type, p_track_id::text, -2, ARRAY[p_event_id], ARRAY[p_type],
            ARRAY[p_schema_version], ARRAY[p_data], ARRAY[p_metadata], ARRAY[p_occurred_at]);
    END IF;
    IF NOT p_subscriptions OR p_user_id IS NULL THEN
        RETURN QUERY SELECT true, t.status::text, true, NULL::text[], NULL::timestamptz[],
                            NULL::timestamptz[];
        RETURN;
    END IF;
    RETURN QUERY
    SELECT true, t.status::text, true,
           coalesce(array_agg(s.status ORDER BY s.as_of DESC, s.subscription_id), '{}'),
           coalesce(array_agg(s.current_period_end ORDER BY s.as_of DESC, s.subscription_id),
                    '{}'),
           coalesce(array_agg(s.past_due_since ORDER BY s.as_of DESC, s.subscription_id), '{}')
    FROM lufy.payment_subscriptions s
    WHERE s.user_id = p_user_id;
END $$;
COMMENT ON FUNCTION lufy.try_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz, boolean) IS
    'A stream grant in one attempt: lufy.issue_stream_grant without lufy.append_to_stream; unique_violation when another grant took the stream version meanwhile (then call lufy.issue_stream_grant).';
REVOKE ALL ON FUNCTION lufy.try_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lufy.try_stream_grant(uuid, uuid, text, text, uuid, text, int, jsonb, jsonb, timestamptz, boolean) TO lufy_app;
