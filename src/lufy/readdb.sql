-- The read replica's delay, measured on the replica (src/lufy/readdb.py).

-- name: replica_lag
-- Seconds the replica is behind.
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0::float8
    WHEN pg_last_wal_receive_lsn() IS NOT NULL
         AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8
    ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
                  'Infinity'::float8)
END;

-- name: replica_state
-- The same, with what one measurement needs to judge WAL that arrived since the previous one.
SELECT pg_is_in_recovery(),
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_receive_lsn() IS NOT NULL
           AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(),
       %(previous)s::pg_lsn IS NOT NULL AND pg_last_wal_replay_lsn() >= %(previous)s::pg_lsn,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8;
