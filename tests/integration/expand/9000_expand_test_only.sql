-- A test-only expand migration: what a newer release may apply while this build still runs.
-- Expand steps only (docs/operations.md, "Expand and contract"): a new table, new nullable
-- columns on read models the current build reads and writes. Nothing renamed, dropped or
-- tightened.
CREATE TABLE lufy.track_moods (
    track_id uuid PRIMARY KEY,
    mood     text NOT NULL
);
ALTER TABLE lufy.tracks ADD COLUMN mood text;
ALTER TABLE lufy.users ADD COLUMN locale text;
ALTER TABLE lufy.playback_sessions ADD COLUMN client_build text;
-- Read models have a shadow copy for rebuilds: an expand step widens it too, so that a rebuild
-- swap (which copies the live table's columns from the shadow copy) works on either release.
ALTER TABLE IF EXISTS lufy_shadow.tracks ADD COLUMN mood text;
ALTER TABLE IF EXISTS lufy_shadow.users ADD COLUMN locale text;
ALTER TABLE IF EXISTS lufy_shadow.playback_sessions ADD COLUMN client_build text;
