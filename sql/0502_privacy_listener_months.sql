-- Privacy: listener ids in analytics events and stream grants are sealed twice: with the
-- person's data key (signed-in listeners) and, outermost, with the key of the UTC month the
-- event happened in. Month keys are ordinary rows of lufy.data_keys (subject: a UUID derived
-- from the month); this table says which subject is which month and whether retention
-- (ANALYTICS_RAW_RETENTION_DAYS) has destroyed its key. A destroyed month is never given a
-- new key: a late event of that month is sealed with a key nobody keeps.
CREATE TABLE lufy.analytics_months (
    month        date        PRIMARY KEY CHECK (extract(day FROM month) = 1),
    subject_id   uuid        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz
);
COMMENT ON TABLE lufy.analytics_months IS
    'One row per UTC month whose analytics listener ids are sealed under a month key (in lufy.data_keys); destroyed_at: when retention destroyed that key.';

ALTER TABLE lufy.analytics_months ENABLE ROW LEVEL SECURITY;
ALTER TABLE lufy.analytics_months FORCE ROW LEVEL SECURITY;
CREATE POLICY analytics_months_system ON lufy.analytics_months FOR ALL
    USING ((select current_setting('app.current_role', true)) = 'system')
    WITH CHECK ((select current_setting('app.current_role', true)) = 'system');
GRANT SELECT, INSERT, UPDATE ON lufy.analytics_months TO lufy_app;

-- The sealing migration's progress for listener ids, apart from the accounts fields': events
-- that the previous version's check already passed may hold listener ids in clear. NULL: not
-- checked yet (the whole log is scanned once).
ALTER TABLE lufy.privacy_sealing ADD COLUMN listeners_checked_below xid8;
