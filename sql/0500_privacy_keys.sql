-- Privacy: per-person data keys (crypto-shredding) and credentials kept out of the log.
--
-- lufy.data_keys holds one AES-256 key per person, wrapped (AES-GCM) by the master key: the
-- configured DATA_KEY_SECRET ('secret'), or in dev/test, when none is configured, the random
-- per-database key of lufy.data_key_master ('database'). Personal fields of events are sealed
-- with the person's key; erasing the person deletes their row here, and every sealed field of
-- theirs, in the log and in backups taken afterwards, becomes unreadable.
CREATE TABLE lufy.data_keys (
    subject_id  uuid PRIMARY KEY,
    wrapped_key bytea       NOT NULL,
    wrapped_by  text        NOT NULL CHECK (wrapped_by IN ('secret', 'database')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lufy.data_keys IS
    'One row per person whose personal data is sealed in the log: their data key, wrapped by the master key. Deleting the row erases the person.';

CREATE TABLE lufy.data_key_master (
    id     int   PRIMARY KEY CHECK (id = 1),
    secret bytea NOT NULL
);
COMMENT ON TABLE lufy.data_key_master IS
    'The dev/test master key (random per database), used only while DATA_KEY_SECRET is unset.';
-- gen_random_uuid() draws from the strong random source: two of them are 244 random bits.
INSERT INTO lufy.data_key_master (id, secret)
VALUES (1, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
ON CONFLICT (id) DO NOTHING;

-- Password hashes: only here, written by the accounts service in the transaction that appends
-- the event; never in the log (events written before this migration may still carry one).
CREATE TABLE lufy.credentials (
    user_id       uuid PRIMARY KEY,
    password_hash text        NOT NULL,
    changed_at    timestamptz NOT NULL
);
COMMENT ON TABLE lufy.credentials IS
    'One row per account with a password: its argon2id hash (not in the log, not rebuilt from it).';

-- Existing hashes are copied out of the users read model (the projection no longer writes
-- them). The column keeps its values while processes of the previous version still read it
-- (expand); `lufy migrate` copies newer ones on every run and a rebuild of accounts_users
-- empties it (contract, docs/privacy.md).
DO $$
BEGIN
    IF to_regclass('lufy.users') IS NOT NULL THEN
        INSERT INTO lufy.credentials (user_id, password_hash, changed_at)
        SELECT id, password_hash, coalesce(password_changed_at, created_at)
        FROM lufy.users WHERE password_hash IS NOT NULL
        ON CONFLICT (user_id) DO NOTHING;
    END IF;
END
$$;

-- Only the services (as system) touch keys and hashes: no user, no admin, no analyst.
ALTER TABLE lufy.data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE lufy.data_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY data_keys_system ON lufy.data_keys FOR ALL
    USING ((select current_setting('app.current_role', true)) = 'system')
    WITH CHECK ((select current_setting('app.current_role', true)) = 'system');
ALTER TABLE lufy.data_key_master ENABLE ROW LEVEL SECURITY;
ALTER TABLE lufy.data_key_master FORCE ROW LEVEL SECURITY;
CREATE POLICY data_key_master_system ON lufy.data_key_master FOR SELECT
    USING ((select current_setting('app.current_role', true)) = 'system');
ALTER TABLE lufy.credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE lufy.credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY credentials_system ON lufy.credentials FOR ALL
    USING ((select current_setting('app.current_role', true)) = 'system')
    WITH CHECK ((select current_setting('app.current_role', true)) = 'system');

GRANT SELECT, INSERT, DELETE ON lufy.data_keys TO lufy_app;
GRANT SELECT ON lufy.data_key_master TO lufy_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON lufy.credentials TO lufy_app;
