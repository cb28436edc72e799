-- The event log, hardened (event-store tuning range 0002-0099).

-- The app role writes only the columns a writer may choose. The position, the transaction id
-- and the recording time belong to the database: a bug or an attacker holding lufy_app must not
-- be able to place an event behind every reader's checkpoint (a chosen transaction_id) or
-- back-date its recording (recorded_at is what the log would be partitioned on).
REVOKE INSERT ON lufy.events FROM lufy_app;
GRANT INSERT (event_id, stream_type, stream_id, stream_version, type, schema_version, data,
              metadata, occurred_at)
    ON lufy.events TO lufy_app;

-- An insert-only table is otherwise vacuumed late: keep its visibility map current (index-only
-- scans for the readers' barrier checks) and freeze it in small steps rather than all at once.
ALTER TABLE lufy.events SET (
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_freeze_min_age = 1000000
);

COMMENT ON COLUMN lufy.events.transaction_id IS
    'xid8 of the writing transaction. Readers pass only transactions below their snapshot xmin, in (transaction_id, global_position) order. Not portable across clusters: after a dump/restore, advance the new cluster''s xid epoch first (docs/architecture.md).';
