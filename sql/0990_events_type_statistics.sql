-- Readers that filter the log by type (the subscription's pages, a projection's ranges) write
-- the filter as `(type || '') = ANY(…)`, so that the planner walks events_transaction_order
-- in log order and stops at the page's LIMIT instead of reading events_type_order, which
-- cannot give log order across types. Without statistics on that expression the planner
-- guesses it keeps 0.5 percent of the rows: on a 13M-event log where the types asked for are
-- most of it, it then expected a page of 100,000 to need the whole index, chose a parallel
-- scan of events_type_order and a sort of everything after the page's start, and a page took
-- 17-20 s instead of well under one (measured on bench/analytics_scale.py --platform
-- 10000000, docs/benchmarks.md "Platform fixture"). The expression's own statistics (most
-- common values, filled by ANALYZE and autovacuum) give the real share of each type.
--
-- A log that is already large is analyzed now (autovacuum would wait for 10 percent more
-- rows). A small or new one is not: analyzed while empty, the planner would plan the appends'
-- version probe as a scan of a table it believes empty, and a cached plan keeps that scan while
-- the log grows (measured: 1,200 µs of server CPU per append instead of 230 in
-- bench/eventstore.py, whose log starts empty); autovacuum analyzes it as it grows.
CREATE STATISTICS IF NOT EXISTS lufy.events_type_filter ON ((type || '')) FROM lufy.events;
DO $$
BEGIN
    IF (SELECT reltuples FROM pg_class WHERE oid = 'lufy.events'::regclass) >= 100000 THEN
        ANALYZE lufy.events;
    END IF;
END $$;
