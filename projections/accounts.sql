-- The accounts read models (inline projections `accounts_users`, `accounts_sessions` and
-- `accounts_tokens`, owned by the accounts context). Names are unqualified: `lufy migrate` and
-- rebuilds choose the schema through search_path. When nothing chose one yet, default to the
-- live schema `lufy` (this transaction only).
SELECT set_config('search_path', 'lufy, public', true)
WHERE current_setting('search_path') !~ 'lufy';

-- users ------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS users (
    id                  uuid PRIMARY KEY,
    -- Stored normalised (trimmed, lower-case): the unique index below is what makes a second
    -- sign-up with the same address fail, even when two race.
    email               text        NOT NULL,
    display_name        text        NOT NULL,
    role                text        NOT NULL CHECK (role IN ('listener', 'artist', 'admin')),
    email_verified      boolean     NOT NULL DEFAULT false,
    email_verified_at   timestamptz,
    -- argon2id (PHC string); NULL for an account that can only sign in by magic link.
    password_hash       text,
    password_changed_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- Version of the user's stream (`user/{id}`) this row reflects.
    version             bigint      NOT NULL DEFAULT 0
);
COMMENT ON TABLE users IS
    'One row per account (stream user/{id}): identity, role, verification and password hash.';
CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (email);
-- Set when the person was erased (accounts.user_erased): e-mail and name are placeholders then.
-- password_hash is no longer written here (privacy: hashes live in lufy.credentials only).
ALTER TABLE users ADD COLUMN IF NOT EXISTS erased_at timestamptz;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;

-- A user sees and changes only their own row; admin and system see all. Accounts are created
-- by system (sign-up, the CLI) or an admin, never in a user's own context.
DROP POLICY IF EXISTS users_read ON users;
CREATE POLICY users_read ON users FOR SELECT USING (
    id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
);
DROP POLICY IF EXISTS users_insert ON users;
CREATE POLICY users_insert ON users FOR INSERT WITH CHECK (
    (select current_setting('app.current_role', true)) IN ('admin', 'system')
);
DROP POLICY IF EXISTS users_update ON users;
CREATE POLICY users_update ON users FOR UPDATE USING (
    id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
) WITH CHECK (
    id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
);

-- Only rebuilds delete (replacing the live rows with the shadow's), and they run as system.
DROP POLICY IF EXISTS users_delete ON users;
CREATE POLICY users_delete ON users FOR DELETE
    USING ((select current_setting('app.current_role', true)) = 'system');

GRANT SELECT, INSERT, UPDATE ON users TO lufy_app;

-- sessions ---------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid        NOT NULL,
    -- How the session began: password | magic_link.
    method         text        NOT NULL,
    -- Parsed from the User-Agent ("Firefox 128 on Linux"); the raw header is not kept.
    device         text        NOT NULL DEFAULT 'unknown device',
    -- The client's network, never its full address: /24 for IPv4, /48 for IPv6.
    ip_prefix      text,
    created_at     timestamptz NOT NULL,
    -- Last sign-in or refresh: an active client refreshes at least every 15 minutes.
    last_seen_at   timestamptz NOT NULL,
    -- When the current refresh token expires (sliding: 30 days after the last refresh).
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    version        bigint      NOT NULL DEFAULT 0
);
COMMENT ON TABLE sessions IS
    'One row per signed-in session (stream session/{id}); revoked rows stay for the record.';
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id, created_at DESC);

-- Every refresh token ever issued, by hash. A token whose used_at is set and that is presented
-- again is a reuse: its whole session is revoked.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash text PRIMARY KEY,
    session_id uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
COMMENT ON TABLE refresh_tokens IS
    'One row per refresh token issued (SHA-256 of the token, never the token itself).';
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS sessions_read ON sessions;
CREATE POLICY sessions_read ON sessions FOR SELECT USING (
    user_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
);
DROP POLICY IF EXISTS sessions_insert ON sessions;
CREATE POLICY sessions_insert ON sessions FOR INSERT WITH CHECK (
    (select current_setting('app.current_role', true)) = 'system'
);
DROP POLICY IF EXISTS sessions_update ON sessions;
CREATE POLICY sessions_update ON sessions FOR UPDATE USING (
    user_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
) WITH CHECK (
    user_id = (select nullif(current_setting('app.current_user_id', true), '')::uuid)
    OR (select current_setting('app.current_role', true)) IN ('admin', 'system')
);

DROP POLICY IF EXISTS sessions_delete ON sessions;
CREATE POLICY sessions_delete ON sessions FOR DELETE
    USING ((select current_setting('app.current_role', true)) = 'system');

-- Token hashes are for the auth service alone (it runs as system): no user, not even an admin.
DROP POLICY IF EXISTS refresh_tokens_system ON refresh_tokens;
CREATE POLICY refresh_tokens_system ON refresh_tokens FOR ALL
    USING ((select current_setting('app.current_role', true)) = 'system')
    WITH CHECK ((select current_setting('app.current_role', true)) = 'system');

GRANT SELECT, INSERT, UPDATE ON sessions TO lufy_app;
GRANT SELECT, INSERT, UPDATE ON refresh_tokens TO lufy_app;

-- single-use e-mail tokens -------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS account_tokens (
    token_hash text PRIMARY KEY,
    user_id    uuid        NOT NULL,
    purpose    text        NOT NULL
               CHECK (purpose IN ('verify_email', 'magic_link', 'password_reset')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
COMMENT ON TABLE account_tokens IS
    'One row per e-mailed token (verification, magic link, password reset), by SHA-256 hash.';
CREATE INDEX IF NOT EXISTS account_tokens_user ON account_tokens (user_id, purpose);
-- Set when the account's password changed while the token was outstanding: the link is dead.
ALTER TABLE account_tokens ADD COLUMN IF NOT EXISTS retired_at timestamptz;

ALTER TABLE account_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_tokens FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS account_tokens_system ON account_tokens;
CREATE POLICY account_tokens_system ON account_tokens FOR ALL
    USING ((select current_setting('app.current_role', true)) = 'system')
    WITH CHECK ((select current_setting('app.current_role', true)) = 'system');

GRANT SELECT, INSERT, UPDATE ON account_tokens TO lufy_app;
