-- The projection runtime's bookkeeping, the jobs the log implies, and the shadow schema used to
-- rebuild read models without taking the live ones offline.

-- One row per projection (async, inline or reactor) the runtime has seen. The checkpoint itself
-- stays in lufy.checkpoints (committed with the read model); this is what an operator looks at.
CREATE TABLE lufy.projection_state (
    name                text PRIMARY KEY,
    -- The version whose rows are in the live read model; a different version in code means
    -- the projector rebuilds before it applies anything new.
    version             int         NOT NULL DEFAULT 1,
    kind                text        NOT NULL DEFAULT 'async'
                        CHECK (kind IN ('async', 'inline', 'reactor')),
    state               text        NOT NULL DEFAULT 'running'
                        CHECK (state IN ('running', 'failed', 'rebuilding', 'stopped')),
    owner               text,
    owner_heartbeat_at  timestamptz,
    failed_position     bigint,
    failed_event_id     uuid,
    error               text,
    failed_at           timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lufy.projection_state IS
    'One row per projection: live version, state (running, failed, rebuilding), owner, last error.';

-- A rebuild in progress: its place in the log is committed with the shadow rows, so an
-- interrupted rebuild (Ctrl-C, kill -9) resumes where it stopped.
CREATE TABLE lufy.projection_rebuilds (
    name             text PRIMARY KEY,
    version          int         NOT NULL,
    until_ts         timestamptz,
    transaction_id   xid8        NOT NULL DEFAULT '0'::xid8,
    global_position  bigint      NOT NULL DEFAULT 0,
    events_applied   bigint      NOT NULL DEFAULT 0,
    started_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Every job the log implies, tracked until done: reactors insert rows in the same transaction as
-- their checkpoint, so a Redis that loses its queue loses no work (the sweeper re-enqueues).
CREATE TABLE lufy.jobs (
    actor            text        NOT NULL,
    job_key          text        NOT NULL,
    queue            text        NOT NULL,
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'retrying', 'done', 'dead')),
    attempts         int         NOT NULL DEFAULT 0,
    source           text,
    global_position  bigint,
    correlation_id   text,
    causation_id     text,
    last_error       text,
    -- Where the message sits in Redis now (queue, or queue.DQ while a retry waits, and the
    -- broker's per-enqueue id): the sweeper re-enqueues a job whose message vanished.
    redis_queue      text,
    redis_message_id text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    enqueued_at      timestamptz,
    started_at       timestamptz,
    lease_until      timestamptz,
    finished_at      timestamptz,
    PRIMARY KEY (actor, job_key)
);
COMMENT ON TABLE lufy.jobs IS
    'One row per background job implied by the log (or scheduled), from recording until done or dead.';
CREATE INDEX jobs_unfinished ON lufy.jobs (created_at) WHERE status NOT IN ('done', 'dead');
CREATE INDEX jobs_dead ON lufy.jobs (finished_at) WHERE status = 'dead';

-- Shadow copies of read-model tables live here; `lufy migrate` applies every projections/*.sql
-- file to this schema as well as to `lufy`, so a rebuild writes with the same unqualified SQL.
CREATE SCHEMA IF NOT EXISTS lufy_shadow;
GRANT USAGE ON SCHEMA lufy_shadow TO lufy_app;

GRANT SELECT, INSERT, UPDATE ON lufy.projection_state TO lufy_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON lufy.projection_rebuilds TO lufy_app;
GRANT SELECT, INSERT, UPDATE ON lufy.jobs TO lufy_app;
GRANT DELETE ON lufy.checkpoints TO lufy_app;
