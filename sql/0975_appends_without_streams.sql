-- Appends without the per-stream row (docs/architecture.md, "Appends"): a stream's version is
-- the last stream_version of its events, and the unique index events_stream_version_key
-- (sql/0001) is what makes an expected version exact: two writers at one version both try the
-- same stream_version, and the second fails on the index once the first commits. The UPDATE of
-- lufy.streams doubled the rows written per append (docs/benchmarks.md, "Appends without the
-- streams row"); nothing reads the table any more.
--
-- lufy.append_to_stream keeps its signature and answers (the fast statement's fallback):
-- an idempotent replay, LU422 (an id used for another event), LU409 (the stream is not at the
-- expected version), or the append itself. A writer that takes the same version or event id
-- meanwhile fails the INSERT inside a subtransaction; the function then looks again (a replay,
-- LU409, or for ANY the append after it) for as long as the stream's last version moves on
-- between looks (a snapshot that does not see the other writer, REPEATABLE READ, gets LU409).
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

        SELECT coalesce(max(e.stream_version), 0) INTO current
        FROM lufy.events e
        WHERE e.stream_type = p_stream_type AND e.stream_id = p_stream_id;
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

DROP TABLE lufy.streams;
