-- The transaction-id horizon guard for restores (src/lufy/eventstore/horizon.py).

-- name: xid_horizon
-- The highest transaction id in the log and the cluster's current one.
SELECT max(transaction_id)::text, pg_current_xact_id()::text
FROM lufy.events;
