-- Privacy: how far `lufy migrate` has checked the log for personal fields still in clear.
-- Every transaction below `checked_below` (the read barrier when the check ran) had finished
-- and was sealed; the next run scans only newer events (those an old process, still running
-- during a rolling deploy, may have written in clear).
CREATE TABLE lufy.privacy_sealing (
    id            int         PRIMARY KEY CHECK (id = 1),
    checked_below xid8        NOT NULL,
    checked_at    timestamptz NOT NULL
);
COMMENT ON TABLE lufy.privacy_sealing IS
    'One row: events of transactions below checked_below hold no personal field in clear.';
