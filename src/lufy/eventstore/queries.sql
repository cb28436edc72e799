-- name: append_to_stream
SELECT global_position, stream_version, transaction_id::text::bigint, replayed
FROM lufy.append_to_stream(%(stream_type)s, %(stream_id)s, %(expected)s, %(event_ids)s,
                           %(types)s, %(schema_versions)s, %(data)s::jsonb[], %(metadata)s::jsonb[],
                           %(occurred_at)s::timestamptz[]);

-- The fast path of every versioned append is one plain statement (no PL/pgSQL), built by
-- eventstore/statements.py from the template `append` and one fragment for each of its three
-- slots (psycopg.sql composition, once at import):
--   {events}: the events to write, as rows (event_id, type, schema_version, data, metadata,
--             occurred_at, i): `events_one` (one event from plain parameters, the usual case:
--             nothing to parse) or `events_batch` (one JSON array parameter: one value to send
--             and parse instead of six arrays, `data` arriving as a JSON object);
--   {stream}: the check of the expected-version mode against the log, returning `base`, the
--             version before the append: `stream_exact`, `stream_no_stream` or `stream_any`
--             (or `stream_known`: `stream_exact` when the event at the version is known to exist);
--   {notify}: `notify_in_tx` (the NOTIFY goes with the caller's transaction) or
--             `notify_after_commit` (the statement commits alone; the caller sends it after).
-- The {stream} fragments have a slot of their own, {fresh_ids}, for the event-id check, which
-- goes with {notify}: inside a caller's transaction `fresh_ids_probed` (none of the ids exists
-- yet: a unique violation there would abort the caller's transaction), when the statement
-- commits alone `fresh_ids_by_index` (no probe: the unique indexes on event_id and on
-- (stream_type, stream_id, stream_version) refuse a used id or a taken version, and the failed
-- statement rolls back whole; the probe cost ~6 µs of backend CPU per append:
-- docs/benchmarks.md, "Appends at 8 writers").
-- Each writes only when the stream is at the expected version and none of the event ids exists
-- yet; otherwise it writes nothing and returns no rows (or fails on one of the two unique
-- indexes), and the caller falls back to lufy.append_to_stream, which answers an idempotent
-- replay or raises the precise error. There is no per-stream row (lufy.streams is gone, sql/0975:
-- its UPDATE doubled the rows written per append): the unique index on the stream's versions
-- serialises writers of one stream, a writer that reaches a taken version waiting for the
-- holder and failing when it commits (docs/architecture.md, "Appends").
-- name: append
WITH batch AS {events},
s AS ({stream}),
ins AS (
    INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type,
                             schema_version, data, metadata, occurred_at)
    SELECT b.event_id, %(stream_type)s, %(stream_id)s, s.base + b.i, b.type, b.schema_version,
           b.data, b.metadata, coalesce(b.occurred_at, now())
    FROM s, batch b
    ORDER BY b.i
    RETURNING global_position, stream_version, transaction_id
)
SELECT global_position, stream_version, transaction_id::text::bigint, {notify}
FROM ins ORDER BY global_position;

-- name: append_one
-- `append` for one event (the usual case), with the same slots: the INSERT is the statement
-- itself and returns its row, so the server runs no CTE scan of `ins` and no sorts (measured:
-- ~6 percent less backend CPU per append on one backend, docs/benchmarks.md "Appends, third pass").
WITH batch AS {events},
s AS ({stream})
INSERT INTO lufy.events (event_id, stream_type, stream_id, stream_version, type, schema_version,
                         data, metadata, occurred_at)
SELECT b.event_id, %(stream_type)s, %(stream_id)s, s.base + b.i, b.type, b.schema_version,
       b.data, b.metadata, coalesce(b.occurred_at, now())
FROM s, batch b
RETURNING global_position, stream_version, transaction_id::text::bigint, {notify};

-- name: events_one
NOT MATERIALIZED (
    SELECT %(event_id)s::uuid AS event_id, %(type)s::text AS type,
           %(schema_version)s::int AS schema_version, %(data)s::jsonb AS data,
           %(metadata)s::jsonb AS metadata, %(occurred_at)s::timestamptz AS occurred_at,
           1::bigint AS i
);

-- name: events_batch
MATERIALIZED (
    SELECT (x.e->>'event_id')::uuid AS event_id, x.e->>'type' AS type,
           (x.e->>'schema_version')::int AS schema_version, x.e->'data' AS data,
           x.e->'metadata' AS metadata, (x.e->>'occurred_at')::timestamptz AS occurred_at, x.i
    FROM jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS x(e, i)
);

-- name: stream_exact
-- The stream is at `expected` when its event at that version is in the log (versions are
-- gap-free from 1: every append writes base + 1 … base + n after checking base). Nothing
-- here locks: the unique index on (stream_type, stream_id, stream_version) refuses version
-- expected + 1 when it is taken, by a committed writer or, once it commits, by one in flight
-- (the index waits for it), so two writers at one expected version never both write.
SELECT %(expected)s::bigint AS base
WHERE EXISTS (SELECT 1 FROM lufy.events
              WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s
                AND stream_version = %(expected)s)
  AND {fresh_ids}

-- name: stream_known
-- `stream_exact` without its look at the log, for a statement that commits alone when the event
-- at `expected` is known to exist: this connection saw a commit that wrote that version or a
-- later one of the stream (postgres.py, `_known_versions`), and the log is append-only (no
-- event is ever deleted, sql/0001), so it still exists. The unique index refuses version
-- expected + 1 when it is taken, as for `stream_exact`; so the stream is exactly at `expected`
-- when this writes. The probe it saves was ~20 µs of a ~180 µs statement's backend CPU
-- (docs/benchmarks.md, "es-append3").
SELECT %(expected)s::bigint AS base
WHERE {fresh_ids}

-- name: stream_no_stream
-- Version 1 under the same index: a stream that exists already refuses it.
SELECT 0::bigint AS base
WHERE {fresh_ids}

-- name: stream_any
-- The stream's last version from the log: the first entry of events_stream_version_key from its
-- end (written so, with the partial index's predicate, so that no plan reads the whole stream:
-- sql/0981). A
-- writer that took base + 1 meanwhile makes this statement fail on the index;
-- lufy.append_to_stream then appends after it.
SELECT coalesce((SELECT stream_version FROM lufy.events
                 WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s
                   AND stream_version IS NOT NULL
                 ORDER BY stream_version DESC LIMIT 1), 0) AS base
WHERE {fresh_ids}

-- name: fresh_ids_probed
-- Inside a caller's transaction: none of the ids exists yet and the versions after `expected`
-- are free (for ANY, `expected` is -2 and the version probe is left out: the base is the last
-- version). A writer still in flight is not seen: the index then fails the statement, and the
-- caller's transaction with it (ConcurrencyError: retry).
NOT EXISTS (SELECT 1 FROM lufy.events ev JOIN batch b ON ev.event_id = b.event_id)
AND (%(expected)s::bigint = -2 OR NOT EXISTS (
    SELECT 1 FROM lufy.events ev
    WHERE ev.stream_type = %(stream_type)s AND ev.stream_id = %(stream_id)s
      AND ev.stream_version > %(expected)s::bigint))

-- name: fresh_ids_by_index
true

-- name: notify_in_tx
(SELECT pg_notify('lufy_events', '')) IS NULL;

-- name: notify_after_commit
false;

-- name: existing_event_ids
-- The ids come as one array literal ('{…,…}': bulk.py builds it as text).
SELECT event_id FROM lufy.events WHERE event_id = ANY(%(event_ids)s::uuid[]);

-- name: copy_events
COPY lufy.events (event_id, stream_type, stream_id, type, schema_version, data, metadata,
                  occurred_at)
FROM STDIN;

-- name: notify
SELECT pg_notify('lufy_events', '');

-- name: notifier_notify
-- The Notifier's NOTIFY: sent by itself as a simple query (its own transaction), its answer read
-- before the next one is sent (notifier.py). The statement rather than pg_notify(): ~10 µs less
-- backend CPU per NOTIFY (docs/benchmarks.md, "es-append3").
NOTIFY lufy_events

-- name: notifier_session
-- The Notifier's own connection (notifier.py): it only sends NOTIFYs (`notifier_notify`), and
-- nothing durable is at stake in them (as notify_alone), so its commits do not wait for the WAL
-- flush.
SET synchronous_commit = off;

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
-- The stream's last version, from the log (a backward probe of events_stream_version_key).
SELECT coalesce(max(stream_version), 0)
FROM lufy.events
WHERE stream_type = %(stream_type)s AND stream_id = %(stream_id)s;

-- name: read_rows
-- A page of the log as rows, decoded event by event (the precise, slower path: see read_page).
-- Gap-free: only transactions below the read barrier (sql/0003) are certainly finished, so only
-- their events are handed out; the barrier is returned so an empty page can still advance the
-- reader. `pending`, from the same snapshot: transactions of this database above the barrier
-- have started, so committed events may be held back and a reader should look again soon. (It
-- used to look for such rows; walking the index past a big in-flight bulk load's invisible rows
-- cost half a second per read.) `types`: NULL for every event, or the types to return; `|| ''`
-- keeps the planner on the (transaction_id, global_position) index: it reads in order and stops
-- after `limit` matches, where the type index would fetch every match up to the barrier and sort
-- them, on every page (quadratic over a catch-up).
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
      AND (%(types)s::text[] IS NULL OR (ev.type || '') = ANY(%(types)s::text[]))
    ORDER BY ev.transaction_id, ev.global_position
    LIMIT %(limit)s
) e ON true;

-- name: read_page
-- A page of the log in one row: the read barrier and whether committed events wait behind it
-- (as read_rows), the number of events, the (tx, pos) of the last one, and the events as one
-- JSON array of the objects RecordedEvent decodes from, fields in its order, so the page is
-- decoded by one msgspec call (codec.decode_page). One row instead of one per event spares the
-- client the per-row work; one `concat` call per event is cheaper for the server than the `||`
-- chain it replaced, and `string_agg … ORDER BY` keeps log order whatever the plan
-- (docs/benchmarks.md, issue 18). `data` carries its type tag first (the decoder picks the
-- Struct from a tagged union; written into the JSON text, because merging JSONB objects cost
-- the server more than the rest of the line) when it is stored at the codec's current schema
-- version, which is 1 unless `versions` (a JSONB object: type -> version) says otherwise; anything
-- else (an older version to upcast) is wrapped as a `lufy.undecoded` object around the payload
-- and decoded event by event. `types`: as read_rows.
-- `to_tx`, `to_pos`: NULL, or the last key of the page (page_bounds).
-- The page's rows of lufy.events are the fragment `page_rows`, filled into this template by
-- reading.py (psycopg.sql composition: braces in the template's text are doubled).
-- `barrier`: NULL, or a barrier an earlier page returned. Every transaction below a barrier
-- stays finished, so a reader that is catching up may keep reading below the one it has
-- (sparing lufy.read_barrier()'s scan of pg_stat_activity on every page) until a page comes
-- back short, and then asks again with a fresh one.
WITH barrier AS MATERIALIZED (
    SELECT b.xmin, b.xmin < pg_snapshot_xmax(pg_current_snapshot()) AS pending
    FROM (SELECT coalesce(%(barrier)s::text::xid8, lufy.read_barrier()) AS xmin) b
)
SELECT barrier.xmin::text::bigint, barrier.pending, p.n, p.last[1], p.last[2], p.body
FROM barrier
LEFT JOIN LATERAL (
    SELECT count(*) AS n, max(ARRAY[e.tx, e.pos]) AS last,
           '[' || string_agg(e.line, ',' ORDER BY e.tx, e.pos) || ']' AS body
    FROM (
        SELECT ev.transaction_id::text::bigint AS tx, ev.global_position AS pos,
               concat('{{"global_position":', ev.global_position,
                      ',"transaction_id":', ev.transaction_id,
                      ',"event_id":"', ev.event_id,
                      '","stream_type":', to_json(ev.stream_type),
                      ',"stream_id":', to_json(ev.stream_id),
                      ',"stream_version":', coalesce(ev.stream_version::text, 'null'),
                      ',"type":', to_json(ev.type),
                      ',"schema_version":', ev.schema_version,
                      ',"data":',
                      CASE WHEN ev.schema_version
                                <> coalesce((%(versions)s::jsonb ->> ev.type)::int, 1)
                           THEN concat('{{"type":"lufy.undecoded","payload":', ev.data, '}}')
                           WHEN ev.data = '{{}}'::jsonb THEN concat('{{"type":', to_json(ev.type), '}}')
                           ELSE concat('{{"type":', to_json(ev.type), ',', substr(ev.data::text, 2))
                      END,
                      ',"metadata":', ev.metadata,
                      ',"occurred_at":', to_json(ev.occurred_at),
                      ',"recorded_at":', to_json(ev.recorded_at),
                      '}}') AS line
        {page_rows}
    ) e
) p ON true;

-- name: read_page_plain
-- read_page's page as plain rows (EventStore(page_reader="plain"), plainpage.py): the server only
-- runs each column's output function, as `COPY` does, and the client assembles the JSON array
-- the one-call decoder reads (docs/benchmarks.md, issue 18: building that JSON on the server
-- cost it 2-6 times what `COPY` of the columns costs). Same barrier, `pending`, filter, bounds
-- and order as read_page (the same fragment `page_rows`, filled in by plainpage.py); every row
-- repeats the barrier and `pending`, and an empty page is one row of them with NULL events. A
-- NULL stream version is sent as `null` (no NULL in an event's columns: `COPY` writes NULL as
-- `\N`, read_page_copy). Timestamps are sent in UTC without an offset (RFC 3339 once the client
-- adds `Z`, whatever the session's TimeZone).
WITH barrier AS MATERIALIZED (
    SELECT b.xmin, b.xmin < pg_snapshot_xmax(pg_current_snapshot()) AS pending
    FROM (SELECT coalesce(%(barrier)s::text::xid8, lufy.read_barrier()) AS xmin) b
)
SELECT barrier.xmin::text::bigint, barrier.pending, e.global_position, e.transaction_id,
       e.event_id, e.stream_type, e.stream_id, coalesce(e.stream_version::text, 'null'), e.type,
       e.schema_version, e.data, e.metadata, e.occurred_at AT TIME ZONE 'UTC',
       e.recorded_at AT TIME ZONE 'UTC'
FROM barrier
LEFT JOIN LATERAL (
    SELECT *
    {page_rows}
) e ON true;

-- name: read_page_copy
-- read_page_plain's rows (the same barrier, `pending`, filter, bounds and order) through
-- `COPY … TO STDOUT` in its text format (EventStore(page_reader="copy"); copypage.py): the
-- server runs the columns' output functions and writes them out, as the `COPY` the catch-up
-- figure is measured against does, with no aggregate; the client reads all the rows at once
-- and splits the page's text in one call. The slot `select` is read_page_plain with its
-- `page_rows` filled in; the parameters are merged in by the client (COPY takes none).
COPY ({select}) TO STDOUT;

-- name: read_page_text
-- read_page_plain's page in one row (EventStore(page_reader="text"), the default; plainpage.py):
-- the barrier, `pending`, the number of events, and their plain columns in text, every value
-- separated from the next by the unit separator U+001F (across events too; a NULL stream
-- version is written `null`); the key of the last event is read from the text. The server runs
-- the output functions `COPY` runs, plus `concat_ws` and one ordered aggregate (measured ~1.4 µs
-- of server CPU per event more than read_page_plain); the client splits the text in one call
-- and libpq reads the page in a few large reads instead of one round of the event loop per
-- 16 kB (~0.8 µs of client CPU per event less: docs/benchmarks.md, issue 18, fourth pass). A
-- value that holds U+001F itself (only an app string can: JSONB escapes it) changes the number
-- of values, and the client reads that page again with read_page_plain.
WITH barrier AS MATERIALIZED (
    SELECT b.xmin, b.xmin < pg_snapshot_xmax(pg_current_snapshot()) AS pending
    FROM (SELECT coalesce(%(barrier)s::text::xid8, lufy.read_barrier()) AS xmin) b
)
SELECT barrier.xmin::text::bigint, barrier.pending, p.n, p.body
FROM barrier
LEFT JOIN LATERAL (
    SELECT count(*) AS n, string_agg(e.line, E'\x1f' ORDER BY e.tx, e.pos) AS body
    FROM (
        SELECT ev.transaction_id AS tx, ev.global_position AS pos,
               concat_ws(E'\x1f', ev.global_position, ev.transaction_id, ev.event_id,
                         ev.stream_type, ev.stream_id, coalesce(ev.stream_version::text, 'null'),
                         ev.type, ev.schema_version, ev.data, ev.metadata,
                         ev.occurred_at AT TIME ZONE 'UTC',
                         ev.recorded_at AT TIME ZONE 'UTC') AS line
        {page_rows}
    ) e
) p ON true;

-- name: read_page_columns
-- read_page_plain's page in one row, column by column (EventStore(page_reader="columns"), the
-- default; columnpage.py): the barrier, `pending`, the number of events, and each column of the
-- page as one text, its values in log order, separated so that the client decodes most columns
-- in one msgspec call each, without splitting them: numbers by commas (a JSON array once `[` and
-- `]` are added; a NULL stream version as `null`), event ids by `","` and timestamps (UTC, no
-- offset) by `Z","` (JSON arrays of strings once `["` and `"]` or `Z"]` are added), metadata by
-- commas (a JSON array of objects); `data` and the three app strings (stream type, stream id,
-- event type) by the unit separator U+001F, which JSONB escapes (the client splits those; a
-- page whose app strings do not split into its events is read again with read_page_plain).
-- The server runs each column's output function and appends it to its aggregate, with no
-- per-event `concat_ws` and no ordered aggregate: read_page_text's line per event and its
-- `string_agg … ORDER BY` cost it 15-20 percent more, and the client's decoding column by column
-- ~40 percent fewer instructions per event than splitting and assembling each event's JSON
-- (docs/benchmarks.md, "es-read3"). The aggregates take the rows in the order the page's
-- subquery returns them (page_rows' ORDER BY: PostgreSQL feeds an aggregate its input in that
-- order, but does not promise it), so the client checks that the keys ascend and reads the page
-- again the precise way when they do not; an ORDER BY in each aggregate would sort the page
-- twelve times.
WITH barrier AS MATERIALIZED (
    SELECT b.xmin, b.xmin < pg_snapshot_xmax(pg_current_snapshot()) AS pending
    FROM (SELECT coalesce(%(barrier)s::text::xid8, lufy.read_barrier()) AS xmin) b
)
SELECT barrier.xmin::text::bigint, barrier.pending, p.*
FROM barrier
LEFT JOIN LATERAL (
    SELECT count(*) AS n,
           string_agg(e.global_position::text, ',') AS positions,
           string_agg(e.transaction_id::text, ',') AS transactions,
           string_agg(e.event_id::text, '","') AS event_ids,
           string_agg(e.stream_type, E'\x1f') AS stream_types,
           string_agg(e.stream_id, E'\x1f') AS stream_ids,
           string_agg(coalesce(e.stream_version::text, 'null'), ',') AS stream_versions,
           string_agg(e.type, E'\x1f') AS types,
           string_agg(e.schema_version::text, ',') AS schema_versions,
           string_agg(e.data::text, E'\x1f') AS data,
           string_agg(e.metadata::text, ',') AS metadata,
           string_agg((e.occurred_at AT TIME ZONE 'UTC')::text, 'Z","') AS occurred_at,
           string_agg((e.recorded_at AT TIME ZONE 'UTC')::text, 'Z","') AS recorded_at
    FROM (SELECT ev.* {page_rows}) e
) p ON true;

-- name: page_rows
-- The rows of a page, filled into read_page, read_page_plain, read_page_text and
-- read_page_columns: after (tx, pos), below the barrier, of the `types` asked for, up to
-- (to_tx, to_pos) when given, in log order.
FROM lufy.events ev
WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
  AND ev.transaction_id < barrier.xmin
  AND (%(types)s::text[] IS NULL OR (ev.type || '') = ANY(%(types)s::text[]))
  AND (%(to_tx)s::text::xid8 IS NULL
       OR (ev.transaction_id, ev.global_position) <= (%(to_tx)s::text::xid8, %(to_pos)s))
ORDER BY ev.transaction_id, ev.global_position
LIMIT %(limit)s;

-- name: page_bounds
-- Where the next `pages` full pages after (tx, pos) end, below a barrier an earlier page returned
-- (the set of events below it is final): every `limit`-th key, read from the index alone. A
-- reader fetches the pages between them on several connections at once (read_page with
-- `to_tx`/`to_pos`); fewer than `pages` rows means the events below the barrier end in a short
-- page after the last one. The keys are cast to bigint only for the rows returned (casting every
-- key the window passes cost about a third of the query).
SELECT k.tx::text::bigint, k.pos
FROM (
    SELECT ev.transaction_id AS tx, ev.global_position AS pos,
           row_number() OVER (ORDER BY ev.transaction_id, ev.global_position) AS n
    FROM lufy.events ev
    WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
      AND ev.transaction_id < %(barrier)s::text::xid8
      AND (%(types)s::text[] IS NULL OR (ev.type || '') = ANY(%(types)s::text[]))
    ORDER BY ev.transaction_id, ev.global_position
    LIMIT %(limit)s::int8 * %(pages)s::int8
) k
WHERE k.n %% %(limit)s::int8 = 0
ORDER BY k.n;

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
-- may be held back behind an open one (see read_rows).
SELECT lufy.read_barrier() < pg_snapshot_xmax(pg_current_snapshot());
