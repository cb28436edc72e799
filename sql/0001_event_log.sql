-- The append-only event log: Lufy's single source of truth.
CREATE SCHEMA IF NOT EXISTS lufy;
GRANT USAGE ON SCHEMA lufy TO lufy_app;

CREATE TABLE lufy.events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction; readers only pass transactions below the snapshot's xmin, which
    -- makes reading in (transaction_id, global_position) order gap-free under concurrent writers.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid        NOT NULL,
    stream_type     text        NOT NULL,
    stream_id       text        NOT NULL,
    -- NULL for high-volume facts appended through the bulk path (no per-stream versioning).
    stream_version  bigint,
    type            text        NOT NULL,
    schema_version  int         NOT NULL DEFAULT 1,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_data_is_object CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT events_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT events_stream_version_positive CHECK (stream_version IS NULL OR stream_version > 0)
);
COMMENT ON TABLE lufy.events IS
    'The append-only event log: one row per domain or analytics event, never updated or deleted.';

CREATE UNIQUE INDEX events_stream_version_key
    ON lufy.events (stream_type, stream_id, stream_version) WHERE stream_version IS NOT NULL;
CREATE INDEX events_transaction_order ON lufy.events (transaction_id, global_position);
CREATE INDEX events_type_order ON lufy.events (type, transaction_id, global_position);
CREATE INDEX events_stream_position ON lufy.events (stream_type, stream_id, global_position);

-- Current version of every versioned stream: the row lock on it serialises writers of one stream
-- (and only of that stream) and makes the expected-version check exact.
CREATE TABLE lufy.streams (
    stream_type text   NOT NULL,
    stream_id   text   NOT NULL,
    version     bigint NOT NULL CHECK (version > 0),
    PRIMARY KEY (stream_type, stream_id)
);

-- Append-only, for every role including the owner.
CREATE FUNCTION lufy.reject_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lufy.events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON lufy.events
    FOR EACH ROW EXECUTE FUNCTION lufy.reject_event_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON lufy.events
    FOR EACH STATEMENT EXECUTE FUNCTION lufy.reject_event_change();

-- Append a batch to one stream with an expected version, in one round trip.
--   p_expected: -2 = any, -1 = no stream, n >= 0 = exactly n (0 is the same as no stream).
-- Idempotent by event id: when every id already exists with the same stream, type and data, the
-- original positions are returned and nothing is written. Errors:
--   LU409 the stream is not at the expected version;  LU422 an event id was used for another event.
CREATE FUNCTION lufy.append_to_stream(
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
BEGIN
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

    IF p_expected = -2 THEN
        INSERT INTO lufy.streams AS s (stream_type, stream_id, version)
        VALUES (p_stream_type, p_stream_id, n)
        ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = s.version + n
        RETURNING s.version - n INTO current;
    ELSIF p_expected <= 0 THEN
        INSERT INTO lufy.streams (stream_type, stream_id, version)
        VALUES (p_stream_type, p_stream_id, n)
        ON CONFLICT (stream_type, stream_id) DO NOTHING
        RETURNING 0 INTO current;
        IF current IS NULL THEN
            RAISE EXCEPTION 'stream %/% already exists', p_stream_type, p_stream_id
                USING ERRCODE = 'LU409';
        END IF;
    ELSE
        UPDATE lufy.streams s SET version = s.version + n
        WHERE s.stream_type = p_stream_type AND s.stream_id = p_stream_id
          AND s.version = p_expected
        RETURNING s.version - n INTO current;
        IF current IS NULL THEN
            RAISE EXCEPTION 'stream %/% is not at version %', p_stream_type, p_stream_id, p_expected
                USING ERRCODE = 'LU409';
        END IF;
    END IF;

    RETURN QUERY
        INSERT INTO lufy.events AS e (event_id, stream_type, stream_id, stream_version, type,
                                      schema_version, data, metadata, occurred_at)
        SELECT x.event_id, p_stream_type, p_stream_id, current + x.i, x.type, x.schema_version,
               x.data, x.metadata, coalesce(x.occurred_at, now())
        FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_metadata, p_occurred_at)
             WITH ORDINALITY AS x(event_id, type, schema_version, data, metadata, occurred_at, i)
        ORDER BY x.i
        RETURNING e.global_position, e.stream_version, e.transaction_id, false;
    PERFORM pg_notify('lufy_events', '');
END $$;

-- Where each reader of the log stands: (transaction_id, global_position) of the last event applied.
CREATE TABLE lufy.checkpoints (
    name            text PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0'::xid8,
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT ON lufy.events TO lufy_app;
GRANT SELECT, INSERT, UPDATE ON lufy.streams TO lufy_app;
GRANT SELECT, INSERT, UPDATE ON lufy.checkpoints TO lufy_app;
GRANT EXECUTE ON FUNCTION lufy.append_to_stream TO lufy_app;
