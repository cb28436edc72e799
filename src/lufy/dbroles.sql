-- Roles `lufy migrate` creates and keeps right (lufy.dbroles). `{...}` are filled in with
-- psycopg.sql (identifiers and literals), `%s` are parameters.

-- name: roles_lock
-- Roles are cluster-wide; creating them races with other migrators on the same cluster.
SELECT pg_advisory_xact_lock(%s);

-- name: role_privileged
SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s;

-- name: role_state
SELECT rolcanlogin, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s;

-- name: stored_password
SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = %s;

-- name: create_role
CREATE ROLE {role} {login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;

-- name: login_with_password
LOGIN PASSWORD {password};

-- name: no_login
NOLOGIN;

-- name: unprivilege_role
ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS;

-- name: disable_login
ALTER ROLE {role} NOLOGIN PASSWORD NULL;

-- name: enable_login
ALTER ROLE {role} LOGIN PASSWORD {password};

-- name: grant_connect
GRANT CONNECT ON DATABASE {database} TO {role};

-- name: role_search_path
ALTER ROLE {role} IN DATABASE {database} SET search_path = {path};

-- name: role_setting
ALTER ROLE {role} IN DATABASE {database} SET {name} = {value};

-- name: revoke_temporary
REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC;

-- name: grant_temporary
GRANT TEMPORARY ON DATABASE {database} TO {role};
