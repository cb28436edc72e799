-- name: txn_context
-- Every projector transaction: the system role for RLS and the schema its tables live in,
-- both local to the transaction (pooled connections never carry them over).
SELECT set_config('app.current_user_id', '', true), set_config('app.current_role', 'system', true),
       set_config('search_path', %(search_path)s, true);

-- name: try_lead
SELECT pg_try_advisory_lock(%(ns)s, hashtext(%(name)s));

-- name: unlead
SELECT pg_advisory_unlock(%(ns)s, hashtext(%(name)s));

-- name: ensure_checkpoint
INSERT INTO lufy.checkpoints (name, transaction_id, global_position)
VALUES (%(name)s, %(tx)s::text::xid8, %(pos)s)
ON CONFLICT (name) DO NOTHING;

-- name: get_checkpoint
SELECT transaction_id::text::bigint, global_position FROM lufy.checkpoints WHERE name = %(name)s;

-- name: lock_checkpoint
SELECT transaction_id::text::bigint, global_position FROM lufy.checkpoints
WHERE name = %(name)s FOR UPDATE;

-- name: set_checkpoint
UPDATE lufy.checkpoints
SET transaction_id = %(tx)s::text::xid8, global_position = %(pos)s, updated_at = now()
WHERE name = %(name)s;

-- name: ensure_state
INSERT INTO lufy.projection_state (name, version, kind)
VALUES (%(name)s, %(version)s, %(kind)s)
ON CONFLICT (name) DO NOTHING;

-- name: get_state
SELECT version, state, failed_position, error FROM lufy.projection_state WHERE name = %(name)s;

-- name: claim_state
UPDATE lufy.projection_state
SET owner = %(owner)s, owner_heartbeat_at = now(), kind = %(kind)s, updated_at = now()
WHERE name = %(name)s;

-- name: mark_running
UPDATE lufy.projection_state
SET state = 'running', failed_position = NULL, failed_event_id = NULL, error = NULL,
    failed_at = NULL, updated_at = now()
WHERE name = %(name)s AND state <> 'running';

-- name: mark_failed
UPDATE lufy.projection_state
SET state = 'failed', failed_position = %(position)s, failed_event_id = %(event_id)s,
    error = %(error)s, failed_at = now(), updated_at = now()
WHERE name = %(name)s;

-- name: mark_rebuilding
UPDATE lufy.projection_state SET state = 'rebuilding', updated_at = now()
WHERE name = %(name)s AND state = 'running';

-- name: set_version
UPDATE lufy.projection_state
SET version = %(version)s, state = 'running', failed_position = NULL, failed_event_id = NULL,
    error = NULL, failed_at = NULL, updated_at = now()
WHERE name = %(name)s;

-- name: event_at
SELECT transaction_id::text::bigint, global_position, event_id, type
FROM lufy.events WHERE global_position = %(pos)s;

-- name: has_passed
-- Whether reader `name` has applied the event at `pos` (its checkpoint may sit at a barrier
-- (xid, 0) past it). NULL when there is no such event or reader.
SELECT (c.transaction_id, c.global_position) >= (e.transaction_id, e.global_position)
FROM lufy.checkpoints c, lufy.events e
WHERE c.name = %(name)s AND e.global_position = %(pos)s;

-- name: read_visible
-- Every committed event after a checkpoint, without the read barrier: only for a reader that
-- holds the locks which keep the not-yet-visible ones out of its tables (inline swaps).
SELECT e.global_position, e.transaction_id::text::bigint, e.event_id, e.stream_type, e.stream_id,
       e.stream_version, e.type, e.schema_version, e.data::text, e.metadata::text,
       e.occurred_at, e.recorded_at, 0::bigint
FROM lufy.events e
WHERE (e.transaction_id, e.global_position) > (%(tx)s::text::xid8, %(pos)s)
  AND e.type = ANY(%(types)s)
ORDER BY e.transaction_id, e.global_position
LIMIT %(limit)s;

-- name: read_range
-- Events after one checkpoint and at or before another (both already below the barrier).
SELECT e.global_position, e.transaction_id::text::bigint, e.event_id, e.stream_type, e.stream_id,
       e.stream_version, e.type, e.schema_version, e.data::text, e.metadata::text,
       e.occurred_at, e.recorded_at, 0::bigint
FROM lufy.events e
WHERE (e.transaction_id, e.global_position) > (%(tx)s::text::xid8, %(pos)s)
  AND (e.transaction_id, e.global_position) <= (%(to_tx)s::text::xid8, %(to_pos)s)
  AND e.type = ANY(%(types)s)
ORDER BY e.transaction_id, e.global_position
LIMIT %(limit)s;

-- name: count_after
-- How many events of these types a reader at a checkpoint has ahead of it (for progress/ETA).
SELECT count(*) FROM lufy.events e
WHERE (e.transaction_id, e.global_position) > (%(tx)s::text::xid8, %(pos)s)
  AND e.type = ANY(%(types)s);

-- name: status
-- Each reader: checkpoint, events not yet applied (capped count), age of the oldest of them,
-- the state row, and the live owner: the backend holding the leadership lock.
WITH barrier AS MATERIALIZED (SELECT lufy.read_barrier() AS xmin)
SELECT s.name, s.kind, s.version, s.state, passed.position,
       behind.events, coalesce(extract(epoch FROM clock_timestamp() - behind.oldest), 0)::float8,
       owner.application_name, owner.pid, s.failed_position, s.error,
       extract(epoch FROM clock_timestamp() - c.updated_at)::float8
FROM lufy.projection_state s
LEFT JOIN lufy.checkpoints c ON c.name = s.name
-- The checkpoint may sit at a barrier (xid, 0): show the last event it has passed.
LEFT JOIN LATERAL (
    SELECT coalesce((
        SELECT e.global_position FROM lufy.events e
        WHERE (e.transaction_id, e.global_position) <= (c.transaction_id, c.global_position)
        ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1), 0) AS position
    WHERE c.name IS NOT NULL
) passed ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS events, min(p.recorded_at) AS oldest
    FROM (
        SELECT e.recorded_at FROM lufy.events e
        WHERE c.name IS NOT NULL
          AND (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)
          AND e.transaction_id < (SELECT xmin FROM barrier)
        ORDER BY e.transaction_id, e.global_position
        LIMIT %(cap)s
    ) p
) behind ON true
LEFT JOIN LATERAL (
    SELECT a.application_name, a.pid
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %(ns)s
      AND l.objid::bigint = (hashtext(s.name)::bigint & 4294967295) AND l.objsubid = 2
    LIMIT 1
) owner ON true
ORDER BY s.name;

-- name: get_rebuild
SELECT version, until_ts, transaction_id::text::bigint, global_position, events_applied,
       first_pass_below::text::bigint, first_pass_end
FROM lufy.projection_rebuilds WHERE name = %(name)s;

-- name: start_rebuild
INSERT INTO lufy.projection_rebuilds (name, version, until_ts, transaction_id, global_position)
VALUES (%(name)s, %(version)s, %(until)s, '0'::xid8, 0)
ON CONFLICT (name) DO UPDATE
SET version = excluded.version, until_ts = excluded.until_ts, transaction_id = '0'::xid8,
    global_position = 0, events_applied = 0, first_pass_below = NULL, first_pass_end = NULL,
    started_at = now(), updated_at = now();

-- name: begin_first_pass
UPDATE lufy.projection_rebuilds
SET first_pass_below = %(below)s::text::xid8, first_pass_end = %(end)s, updated_at = now()
WHERE name = %(name)s;

-- name: advance_first_pass
UPDATE lufy.projection_rebuilds SET global_position = %(pos)s, updated_at = now()
WHERE name = %(name)s;

-- name: end_first_pass
-- The pass covered every event below the barrier: from here on the place is the checkpoint
-- (barrier, 0), as for any reader that has read everything below a barrier.
UPDATE lufy.projection_rebuilds
SET transaction_id = first_pass_below, global_position = 0, events_applied = %(applied)s,
    first_pass_below = NULL, first_pass_end = NULL, updated_at = now()
WHERE name = %(name)s;

-- name: barrier_now
-- Before last_position, in its own statement: every transaction below the barrier has then
-- finished before last_position takes its snapshot, so all their events are at or below it.
SELECT lufy.read_barrier()::text::bigint;

-- name: last_position
SELECT max(global_position) FROM lufy.events;

-- name: count_first_pass
-- The events a first pass applies (for progress and the events_applied figure).
SELECT count(*) FROM lufy.events
WHERE transaction_id < %(below)s::text::xid8 AND type = ANY(%(types)s);

-- name: advance_rebuild
UPDATE lufy.projection_rebuilds
SET transaction_id = %(tx)s::text::xid8, global_position = %(pos)s,
    events_applied = events_applied + %(applied)s, updated_at = now()
WHERE name = %(name)s;

-- name: finish_rebuild
DELETE FROM lufy.projection_rebuilds WHERE name = %(name)s;

-- name: table_columns
-- Insertable columns of a live table, in order (generated columns are computed again).
SELECT a.attname
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attgenerated = ''
ORDER BY a.attnum;

-- name: shadow_exists
SELECT to_regclass(%(table)s) IS NOT NULL;

-- name: read_positions
-- Like EventStore.read_all, but only where the events are: for projections that apply a range
-- of the log with one set-based statement (RangeProjection), nothing else needs reading.
WITH barrier AS MATERIALIZED (SELECT lufy.read_barrier() AS xmin)
SELECT e.transaction_id::text::bigint, e.global_position, e.recorded_at, barrier.xmin::text::bigint
FROM barrier
LEFT JOIN LATERAL (
    SELECT ev.transaction_id, ev.global_position, ev.recorded_at FROM lufy.events ev
    WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
      AND ev.transaction_id < barrier.xmin
      -- `|| ''` keeps the planner off events_type_order, which cannot honour the row
      -- comparison and would read every event of the type on each page.
      AND (ev.type || '') = ANY(%(types)s)
    ORDER BY ev.transaction_id, ev.global_position
    LIMIT %(limit)s
) e ON true;

-- name: read_boundary
-- Where a page of `limit` events after a checkpoint ends (its last event), without reading
-- the events: NULL when fewer remain below the barrier (then the page ends at the barrier).
WITH barrier AS MATERIALIZED (SELECT lufy.read_barrier() AS xmin)
SELECT e.transaction_id::text::bigint, e.global_position, barrier.xmin::text::bigint
FROM barrier
LEFT JOIN LATERAL (
    SELECT ev.transaction_id, ev.global_position FROM lufy.events ev
    WHERE (ev.transaction_id, ev.global_position) > (%(tx)s::text::xid8, %(pos)s)
      AND ev.transaction_id < barrier.xmin
      -- `|| ''` keeps the planner off events_type_order, which cannot honour the row
      -- comparison and would read every event of the type on each page.
      AND (ev.type || '') = ANY(%(types)s)
    ORDER BY ev.transaction_id, ev.global_position
    OFFSET %(offset)s LIMIT 1
) e ON true;

-- name: count_below
-- Events of these types after a checkpoint and below a barrier (the last, short page).
SELECT count(*) FROM lufy.events e
WHERE (e.transaction_id, e.global_position) > (%(tx)s::text::xid8, %(pos)s)
  AND e.transaction_id < %(barrier)s::text::xid8
  AND e.type = ANY(%(types)s);

-- name: lag_of_unstarted
-- Events after a checkpoint that no projector has used yet (a reactor placed by migrate), or
-- after the start of the log when there is no checkpoint; counted up to %(cap)s.
SELECT count(*) FROM (
    SELECT 1 FROM lufy.events e
    LEFT JOIN lufy.checkpoints c ON c.name = %(name)s
    WHERE (e.transaction_id, e.global_position)
          > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.global_position, 0))
    LIMIT %(cap)s
) behind;
