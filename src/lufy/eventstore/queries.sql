-- name: append_to_stream
SELECT global_position, stream_version, transaction_id::text::bigint, replayed
FROM lufy.append_to_stream(%(stream_type)s, %(stream_id)s, %(expected)s, %(event_ids)s,
                           %(types)s, %(schema_versions)s, %(data)s::jsonb[], %(metadata)s::jsonb[],
                           %(occurred_at)s::timestamptz[]);

-- The fast paths: one plain statement per expected-version mode, no PL/pgSQL. The batch is one
-- JSON array parameter ({event_id, type, schema_version, data, metadata, occurred_at} per
-- event): one value to send and parse instead of six arrays, and `data` arrives as a JSON
-- object, never as a string. Each writes only when none of the event ids exists yet and the
-- stream is at the expected version; otherwise it writes nothing and returns no rows, and the
-- caller falls back to lufy.append_to_stream, which answers an idempotent replay or raises the
-- precise error. The streams row lock serialises writers of one stream; a writer that waited
-- re-checks the version on the new row (READ COMMITTED EvalPlanQual).
-- name: append_exact
WITH batch AS MATERIALIZED (
    SELECT (x.e->>'event_id')::uuid AS event_id, x.e->>'type' AS type,
           (x.e->>'schema_version')::int AS schema_version, x.e->'data' AS data,
           x.e->'metadata' AS metadata, (x.e->>'occurred_at')::timestamptz AS occurred_at, x.i
    FROM jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS x(e, i)
), s AS (
    UPDATE lufy.streams
    SET version = version + %(n)s::bigint
    WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s
      AND version = %(expected)s
      AND NOT EXISTS (SELECT 1 FROM lufy.events ev JOIN batch b ON ev.event_id = b.event_id)
    RETURNING version - %(n)s::bigint AS base
), ins AS (
    INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type,
                             schema_version, data, metadata, occurred_at)
    SELECT b.event_id, %(stream_type)s, %(stream_id)s, s.base + b.i, b.type, b.schema_version,
           b.data, b.metadata, coalesce(b.occurred_at, now())
    FROM s, batch b
    ORDER BY b.i
    RETURNING global_position, stream_version, transaction_id
)
SELECT global_position, stream_version, transaction_id::text::bigint,
       (SELECT pg_notify('lufy_events', '')) IS NULL
FROM ins ORDER BY global_position;

-- name: append_no_stream
WITH batch AS MATERIALIZED (
    SELECT (x.e->>'event_id')::uuid AS event_id, x.e->>'type' AS type,
           (x.e->>'schema_version')::int AS schema_version, x.e->'data' AS data,
           x.e->'metadata' AS metadata, (x.e->>'occurred_at')::timestamptz AS occurred_at, x.i
    FROM jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS x(e, i)
), s AS (
    INSERT INTO lufy.streams (stream_type, stream_id, version)
    SELECT %(stream_type)s, %(stream_id)s, %(n)s::bigint
    WHERE NOT EXISTS (SELECT 1 FROM lufy.events ev JOIN batch b ON ev.event_id = b.event_id)
    ON CONFLICT (stream_type, stream_id) DO NOTHING
    RETURNING 0::bigint AS base
), ins AS (
    INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type,
                             schema_version, data, metadata, occurred_at)
    SELECT b.event_id, %(stream_type)s, %(stream_id)s, s.base + b.i, b.type, b.schema_version,
           b.data, b.metadata, coalesce(b.occurred_at, now())
    FROM s, batch b
    ORDER BY b.i
    RETURNING global_position, stream_version, transaction_id
)
SELECT global_position, stream_version, transaction_id::text::bigint,
       (SELECT pg_notify('lufy_events', '')) IS NULL
FROM ins ORDER BY global_position;

-- name: append_any
WITH batch AS MATERIALIZED (
    SELECT (x.e->>'event_id')::uuid AS event_id, x.e->>'type' AS type,
           (x.e->>'schema_version')::int AS schema_version, x.e->'data' AS data,
           x.e->'metadata' AS metadata, (x.e->>'occurred_at')::timestamptz AS occurred_at, x.i
    FROM jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS x(e, i)
), s AS (
    INSERT INTO lufy.streams AS st (stream_type, stream_id, version)
    SELECT %(stream_type)s, %(stream_id)s, %(n)s::bigint
    WHERE NOT EXISTS (SELECT 1 FROM lufy.events ev JOIN batch b ON ev.event_id = b.event_id)
    ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = st.version + excluded.version
    RETURNING st.version - %(n)s::bigint AS base
), ins AS (
    INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type,
                             schema_version, data, metadata, occurred_at)
    SELECT b.event_id, %(stream_type)s, %(stream_id)s, s.base + b.i, b.type, b.schema_version,
           b.data, b.metadata, coalesce(b.occurred_at, now())
    FROM s, batch b
    ORDER BY b.i
    RETURNING global_position, stream_version, transaction_id
)
SELECT global_position, stream_version, transaction_id::text::bigint,
       (SELECT pg_notify('lufy_events', '')) IS NULL
FROM ins ORDER BY global_position;

-- The same three modes for one event, the usual case (a command's single fact): plain
-- parameters, no JSON batch to parse, no CTE scans or sorts. Server side (EXPLAIN ANALYZE), the
-- batch statement spent ~2x a plain INSERT's time executing for one event, mostly on those.
-- name: append_one_exact
WITH s AS (
    UPDATE lufy.streams
    SET version = version + 1
    WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s
      AND version = %(expected)s
      AND NOT EXISTS (SELECT 1 FROM lufy.events ev WHERE ev.event_id = %(event_id)s)
    RETURNING version
)
INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type,
                         schema_version, data, metadata, occurred_at)
SELECT %(event_id)s, %(stream_type)s, %(stream_id)s, s.version, %(type)s, %(schema_version)s,
       %(data)s::jsonb, %(metadata)s::jsonb, coalesce(%(occurred_at)s::timestamptz, now())
FROM s
RETURNING global_position, stream_version, transaction_id::text::bigint,
          (SELECT pg_notify('lufy_events', '')) IS NULL;

-- name: append_one_no_stream
WITH s AS (
    INSERT INTO lufy.streams (stream_type, stream_id, version)
    SELECT %(stream_type)s, %(stream_id)s, 1
    WHERE NOT EXISTS (SELECT 1 FROM lufy.events ev WHERE ev.event_id = %(event_id)s)
    ON CONFLICT (stream_type, stream_id) DO NOTHING
    RETURNING version
)
INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type,
                         schema_version, data, metadata, occurred_at)
SELECT %(event_id)s, %(stream_type)s, %(stream_id)s, s.version, %(type)s, %(schema_version)s,
       %(data)s::jsonb, %(metadata)s::jsonb, coalesce(%(occurred_at)s::timestamptz, now())
FROM s
RETURNING global_position, stream_version, transaction_id::text::bigint,
          (SELECT pg_notify('lufy_events', '')) IS NULL;

-- name: append_one_any
WITH s AS (
    INSERT INTO lufy.streams AS st (stream_type, stream_id, version)
    SELECT %(stream_type)s, %(stream_id)s, 1
    WHERE NOT EXISTS (SELECT 1 FROM lufy.events ev WHERE ev.event_id = %(event_id)s)
    ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = st.version + 1
    RETURNING st.version
)
INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type,
                         schema_version, data, metadata, occurred_at)
SELECT %(event_id)s, %(stream_type)s, %(stream_id)s, s.version, %(type)s, %(schema_version)s,
       %(data)s::jsonb, %(metadata)s::jsonb, coalesce(%(occurred_at)s::timestamptz, now())
FROM s
RETURNING global_position, stream_version, transaction_id::text::bigint,
          (SELECT pg_notify('lufy_events', '')) IS NULL;

-- name: existing_event_ids
SELECT event_id FROM lufy.events WHERE event_id = ANY(%(event_ids)s);

-- name: copy_events
COPY lufy.events (event_id, stream_type, stream_id, type, schema_version, data, metadata,
                  occurred_at)
FROM STDIN;

-- name: notify
SELECT pg_notify('lufy_events', '');

-- name: notify_alone
-- A NOTIFY in a transaction of its own, after the events committed. PostgreSQL gives a notifying
-- transaction an xid and holds a global lock from queueing until its commit is done: with
-- synchronous commit that lock spans a WAL flush and serialises every notifier. Nothing durable
-- is at stake here (notifications do not survive a crash anyway), so this one commits async.
SELECT set_config('synchronous_commit', 'off', true), pg_notify('lufy_events', '');

-- name: read_stream_forward
SELECT global_position, transaction_id::text::bigint, event_id, stream_type, stream_id,
       stream_version, type, schema_version, data::text, metadata::text, occurred_at, recorded_at
FROM lufy.events
WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s
  AND stream_version >= %(from_version)s
ORDER BY stream_version
LIMIT %(limit)s;

-- name: read_stream_backward
SELECT global_position, transaction_id::text::bigint, event_id, stream_type, stream_id,
       stream_version, type, schema_version, data::text, metadata::text, occurred_at, recorded_at
FROM lufy.events
WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s
  AND stream_version <= %(from_version)s
ORDER BY stream_version DESC
LIMIT %(limit)s;

-- name: stream_version
SELECT version FROM lufy.streams WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s;

-- name: read_all
-- Gap-free: only transactions below the read barrier (sql/0003) are certainly finished, so only their
-- events are handed out; the barrier is returned so an empty page can still advance the reader.
-- `pending`, from the same snapshot: transactions of this database above the barrier have
-- started, so committed events may be held back and a reader should look again soon. (It used
-- to look for such rows; walking the index past a big in-flight bulk load's invisible rows cost
-- half a second per read.)
WITH barrier AS MATERIALIZED (
    SELECT b.xmin, b.xmin < pg_snapshot_xmax(pg_current_snapshot()) AS pending
    FROM (SELECT lufy.read_barrier() AS xmin) b
)
SELECT e.global_position, e.transaction_id::text::bigint, e.event_id, e.stream_type, e.stream_id,
       e.stream_version, e.type, e.schema_version, e.data::text, e.metadata::text,
       e.occurred_at, e.recorded_at, barrier.xmin::text::bigint, barrier.pending
FROM barrier
LEFT JOIN LATERAL (
    SELECT * FROM lufy.events ev
    WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
      AND ev.transaction_id < barrier.xmin
    ORDER BY ev.transaction_id, ev.global_position
    LIMIT %(limit)s
) e ON true;

-- name: read_all_types
WITH barrier AS MATERIALIZED (
    SELECT b.xmin, b.xmin < pg_snapshot_xmax(pg_current_snapshot()) AS pending
    FROM (SELECT lufy.read_barrier() AS xmin) b
)
SELECT e.global_position, e.transaction_id::text::bigint, e.event_id, e.stream_type, e.stream_id,
       e.stream_version, e.type, e.schema_version, e.data::text, e.metadata::text,
       e.occurred_at, e.recorded_at, barrier.xmin::text::bigint, barrier.pending
FROM barrier
LEFT JOIN LATERAL (
    SELECT * FROM lufy.events ev
    WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
      AND ev.transaction_id < barrier.xmin
      -- `|| ''` keeps the planner on the (transaction_id, global_position) index: it reads in
      -- order and stops after `limit` matches, where the type index would fetch every match up to
      -- the barrier and sort them, on every page (quadratic over a catch-up).
      AND (ev.type || '') = ANY(%(types)s)
    ORDER BY ev.transaction_id, ev.global_position
    LIMIT %(limit)s
) e ON true;

-- name: page_line
-- One event of lufy.events `ev` as the JSON object RecordedEvent decodes from, fields in its
-- order, so a page of them is decoded by one msgspec call (EventStore.fetch_page splices this
-- into the page queries below where they say page_line). `data` carries its type tag (the
-- decoder picks the Struct from a tagged union) when it is stored at the codec's current
-- schema version: version 1 of a type not in the `versioned` parameter, or the version the
-- `versions` parameter ({type: version}) names; anything else (an older version to upcast) is wrapped as
-- {"type": "lufy.undecoded", "payload": ...} and decoded event by event. Every non-text
-- value is cast to text explicitly (`text || bigint` looks its output function up each call).
'{"global_position":' || ev.global_position::text
        || ',"transaction_id":' || ev.transaction_id::text
        || ',"event_id":"' || ev.event_id::text
        || '","stream_type":' || to_json(ev.stream_type)::text
        || ',"stream_id":' || to_json(ev.stream_id)::text
        || ',"stream_version":' || coalesce(ev.stream_version::text, 'null')
        || ',"type":' || to_json(ev.type)::text
        || ',"schema_version":' || ev.schema_version::text
        || CASE WHEN (ev.schema_version = 1 AND ev.type <> ALL(%(versioned)s::text[]))
                  OR (ev.schema_version > 1
                      AND (%(versions)s::jsonb ->> ev.type)::int = ev.schema_version)
                THEN ',"data":{"type":' || to_json(ev.type)::text
                     || CASE WHEN ev.data = '{}'::jsonb THEN '}'
                             ELSE ',' || substr(ev.data::text, 2) END
                ELSE ',"data":{"type":"lufy.undecoded","payload":' || ev.data::text || '}' END
        || ',"metadata":' || ev.metadata::text
        || ',"occurred_at":' || to_json(ev.occurred_at)::text
        || ',"recorded_at":' || to_json(ev.recorded_at)::text
        || '}'

-- name: read_page
-- read_all's page: the events as page_line objects, the read barrier and whether committed
-- events wait behind it, and each row's (tx, pos) so a reader can ask for the next page
-- before it decodes this one.
-- `barrier`: NULL, or a barrier an earlier page returned. Every transaction below a barrier
-- stays finished, so a reader that is catching up may keep reading below the one it has
-- (sparing lufy.read_barrier()'s scan of pg_stat_activity on every page) until a page comes
-- back short, and then asks again with a fresh one.
WITH barrier AS MATERIALIZED (
    SELECT b.xmin, b.xmin < pg_snapshot_xmax(pg_current_snapshot()) AS pending
    FROM (SELECT coalesce(%(barrier)s::text::xid8, lufy.read_barrier()) AS xmin) b
)
SELECT barrier.xmin::text::bigint, barrier.pending, e.tx, e.pos, e.line
FROM barrier
LEFT JOIN LATERAL (
    SELECT ev.transaction_id::text::bigint AS tx, ev.global_position AS pos,
           /*page_line*/ AS line
    FROM lufy.events ev
    WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
      AND ev.transaction_id < barrier.xmin
    ORDER BY ev.transaction_id, ev.global_position
    LIMIT %(limit)s
) e ON true;

-- name: read_page_types
-- read_page for the events of some types (`|| ''`: see read_all_types).
WITH barrier AS MATERIALIZED (
    SELECT b.xmin, b.xmin < pg_snapshot_xmax(pg_current_snapshot()) AS pending
    FROM (SELECT coalesce(%(barrier)s::text::xid8, lufy.read_barrier()) AS xmin) b
)
SELECT barrier.xmin::text::bigint, barrier.pending, e.tx, e.pos, e.line
FROM barrier
LEFT JOIN LATERAL (
    SELECT ev.transaction_id::text::bigint AS tx, ev.global_position AS pos,
           /*page_line*/ AS line
    FROM lufy.events ev
    WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
      AND ev.transaction_id < barrier.xmin
      AND (ev.type || '') = ANY(%(types)s)
    ORDER BY ev.transaction_id, ev.global_position
    LIMIT %(limit)s
) e ON true;

-- name: head
SELECT coalesce(max(global_position), 0) FROM lufy.events;

-- name: barrier_holder
-- The oldest transaction that holds the read barrier back, if any: backend, age, state, query.
SELECT a.pid, a.usename::text, a.application_name, a.state,
       extract(epoch FROM now() - a.xact_start)::float8 AS seconds, left(a.query, 200)
FROM pg_stat_activity a
WHERE a.backend_xid IS NOT NULL
  AND a.backend_xid::text::bigint = (lufy.read_barrier()::text::bigint % 4294967296)
LIMIT 1;

-- name: barrier
SELECT lufy.read_barrier()::text::bigint;

-- name: pending
-- Whether transactions of this database above the read barrier have started: committed events
-- may be held back behind an open one (see read_all).
SELECT lufy.read_barrier() < pg_snapshot_xmax(pg_current_snapshot());
