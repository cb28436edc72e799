-- A RangeProjection's rebuild first covers everything below the read barrier of its start by
-- ranges of log positions (a plain index range, or a sequential read, per statement), then goes
-- on in (transaction_id, global_position) order like any reader. While in that first pass,
-- `first_pass_below` is the barrier, `first_pass_end` the last position it covers and
-- `global_position` the last position done; `transaction_id` is unused until the pass ends.
ALTER TABLE lufy.projection_rebuilds
    ADD COLUMN first_pass_below xid8,
    ADD COLUMN first_pass_end   bigint;
