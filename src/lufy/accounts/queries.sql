-- Named queries of the accounts context. Table names are unqualified (search_path: lufy).

-- projection: users -------------------------------------------------------------------------

-- name: users_insert
INSERT INTO users (id, email, display_name, role, email_verified, email_verified_at,
                   password_hash, password_changed_at, created_at, updated_at, version)
VALUES (%(id)s, %(email)s, %(display_name)s, %(role)s, %(email_verified)s,
        CASE WHEN %(email_verified)s THEN %(at)s END, %(password_hash)s,
        CASE WHEN %(password_hash)s::text IS NOT NULL THEN %(at)s END, %(at)s, %(at)s, %(version)s)

-- name: users_verified
UPDATE users SET email_verified = true, email_verified_at = coalesce(email_verified_at, %(at)s),
                 updated_at = %(at)s, version = %(version)s
WHERE id = %(id)s

-- name: users_password
UPDATE users SET password_hash = %(password_hash)s, password_changed_at = %(at)s,
                 updated_at = %(at)s, version = %(version)s
WHERE id = %(id)s

-- Erasure: the row stays (ids are referenced everywhere) with nothing personal left in it.
-- name: users_erased
UPDATE users SET email = 'erased:' || id::text, display_name = '[erased]', password_hash = NULL,
                 erased_at = coalesce(erased_at, %(at)s), updated_at = %(at)s,
                 version = %(version)s
WHERE id = %(id)s

-- name: users_version
UPDATE users SET version = %(version)s WHERE id = %(id)s AND version < %(version)s

-- projection: sessions ----------------------------------------------------------------------

-- name: sessions_insert
INSERT INTO sessions (id, user_id, method, device, ip_prefix, created_at, last_seen_at,
                      expires_at, version)
VALUES (%(id)s, %(user_id)s, %(method)s, %(device)s, %(ip_prefix)s, %(at)s, %(at)s,
        %(expires_at)s, %(version)s)

-- name: sessions_refreshed
UPDATE sessions SET last_seen_at = %(at)s, expires_at = %(expires_at)s,
                    ip_prefix = coalesce(%(ip_prefix)s, ip_prefix), version = %(version)s
WHERE id = %(id)s

-- name: sessions_revoked
UPDATE sessions SET revoked_at = coalesce(revoked_at, %(at)s),
                    revoked_reason = coalesce(revoked_reason, %(reason)s), version = %(version)s
WHERE id = %(id)s

-- name: sessions_version
UPDATE sessions SET version = %(version)s WHERE id = %(id)s AND version < %(version)s

-- name: refresh_insert
INSERT INTO refresh_tokens (token_hash, session_id, user_id, issued_at, expires_at)
VALUES (%(token_hash)s, %(session_id)s, %(user_id)s, %(at)s, %(expires_at)s)

-- name: refresh_used
UPDATE refresh_tokens SET used_at = coalesce(used_at, %(at)s) WHERE token_hash = %(token_hash)s

-- projection: tokens ------------------------------------------------------------------------

-- name: tokens_insert
INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at)
VALUES (%(token_hash)s, %(user_id)s, %(purpose)s, %(at)s, %(expires_at)s)
ON CONFLICT (token_hash) DO NOTHING

-- name: tokens_used
UPDATE account_tokens SET used_at = coalesce(used_at, %(at)s) WHERE token_hash = %(token_hash)s

-- A password change ends every outstanding e-mailed link of the account (verification, magic
-- link, reset): they were sent before it, maybe to whoever the change locks out.
-- name: tokens_retire_all
UPDATE account_tokens SET retired_at = %(at)s
WHERE user_id = %(user_id)s AND used_at IS NULL AND retired_at IS NULL

-- credentials (not a projection: written by the service next to the event) -----------------

-- name: credentials_set
INSERT INTO lufy.credentials (user_id, password_hash, changed_at)
VALUES (%(user_id)s, %(password_hash)s, %(at)s)
ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash,
                                    changed_at = excluded.changed_at

-- name: credentials_delete
DELETE FROM lufy.credentials WHERE user_id = %(user_id)s

-- reads -------------------------------------------------------------------------------------
-- The password hash is lufy.credentials' (changed_at: the occurred_at of the event that set
-- it, which the projection also writes to users.password_changed_at). users.password_hash (or its
-- absence) wins only when users.password_changed_at is newer: a process of the version before
-- privacy sealing changed or removed the password during a rolling deploy.

-- name: user_by_email
SELECT id, email, display_name, role, email_verified,
       CASE WHEN password_changed_at > coalesce(
                (SELECT c.changed_at FROM lufy.credentials c WHERE c.user_id = users.id),
                '-infinity')
            THEN password_hash
            ELSE (SELECT c.password_hash FROM lufy.credentials c WHERE c.user_id = users.id)
       END,
       version
FROM users WHERE email = %(email)s

-- name: user_by_id
SELECT id, email, display_name, role, email_verified,
       CASE WHEN password_changed_at > coalesce(
                (SELECT c.changed_at FROM lufy.credentials c WHERE c.user_id = users.id),
                '-infinity')
            THEN password_hash
            ELSE (SELECT c.password_hash FROM lufy.credentials c WHERE c.user_id = users.id)
       END,
       version
FROM users WHERE id = %(id)s

-- name: user_by_id_for_update
SELECT id, email, display_name, role, email_verified,
       CASE WHEN password_changed_at > coalesce(
                (SELECT c.changed_at FROM lufy.credentials c WHERE c.user_id = users.id),
                '-infinity')
            THEN password_hash
            ELSE (SELECT c.password_hash FROM lufy.credentials c WHERE c.user_id = users.id)
       END,
       version
FROM users WHERE id = %(id)s FOR UPDATE

-- name: token_for_update
SELECT token_hash, user_id, purpose, expires_at, used_at, retired_at
FROM account_tokens WHERE token_hash = %(token_hash)s FOR UPDATE

-- name: refresh_for_update
SELECT token_hash, session_id, user_id, expires_at, used_at
FROM refresh_tokens WHERE token_hash = %(token_hash)s FOR UPDATE

-- name: session_for_update
SELECT id, user_id, expires_at, revoked_at, version
FROM sessions WHERE id = %(id)s FOR UPDATE

-- name: session_view
SELECT id, user_id, method, device, ip_prefix, created_at, last_seen_at, expires_at,
       revoked_at, revoked_reason
FROM sessions WHERE id = %(id)s

-- name: sessions_of_user
SELECT id, user_id, method, device, ip_prefix, created_at, last_seen_at, expires_at,
       revoked_at, revoked_reason
FROM sessions
WHERE user_id = %(user_id)s AND revoked_at IS NULL AND expires_at > now()
ORDER BY last_seen_at DESC, id

-- name: other_live_sessions_for_update
SELECT id, user_id, expires_at, revoked_at, version
FROM sessions
WHERE user_id = %(user_id)s AND id <> %(keep)s AND revoked_at IS NULL
ORDER BY id FOR UPDATE

-- The per-request check behind every access token (cached briefly by the service).
-- name: session_is_live
SELECT revoked_at IS NULL AND expires_at > now()
FROM sessions WHERE id = %(id)s AND user_id = %(user_id)s

-- name: current_session
SELECT s.id, s.user_id, s.method, s.device, s.ip_prefix, s.created_at, s.last_seen_at,
       s.expires_at, s.revoked_at, s.revoked_reason,
       u.id, u.email, u.display_name, u.role, u.email_verified, NULL::text, u.version
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = %(id)s AND s.user_id = %(user_id)s

-- name: user_erased_at
SELECT erased_at FROM users WHERE id = %(id)s

-- name: all_live_sessions_for_update
SELECT id, user_id, expires_at, revoked_at, version
FROM sessions
WHERE user_id = %(user_id)s AND revoked_at IS NULL
ORDER BY id FOR UPDATE
