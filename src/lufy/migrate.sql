-- What `lufy migrate` runs besides the files of sql/ and projections/ (lufy.migrate).
-- `{...}` are filled in with psycopg.sql (identifiers), `%s` are parameters.

-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = %s;

-- name: create_database
CREATE DATABASE {database};

-- name: lock
SELECT pg_advisory_lock(%s);

-- name: unlock
SELECT pg_advisory_unlock(%s);

-- name: bookkeeping
CREATE SCHEMA IF NOT EXISTS lufy;
CREATE TABLE IF NOT EXISTS lufy.schema_migrations (
    filename   text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS lufy.projection_definitions (
    filename   text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
-- /readyz (as the app role) compares the applied migrations with the shipped ones.
GRANT SELECT ON lufy.schema_migrations, lufy.projection_definitions TO lufy_app;

-- name: applied_migrations
-- Also what /readyz compares with the migrations the build ships (lufy.web.health).
SELECT filename, checksum FROM lufy.schema_migrations;

-- name: record_migration
INSERT INTO lufy.schema_migrations (filename, checksum) VALUES (%s, %s);

-- name: defined_projections
SELECT filename, checksum FROM lufy.projection_definitions;

-- name: record_projection
INSERT INTO lufy.projection_definitions (filename, checksum)
VALUES (%s, %s)
ON CONFLICT (filename) DO UPDATE SET checksum = excluded.checksum, applied_at = now();

-- name: set_search_path
SET LOCAL search_path = {schemas};

-- name: schema_exists
SELECT to_regnamespace(%s);

-- name: leaked_into_shadow
-- A view or materialized view outside the shadow schema that reads a table inside it.
SELECT v.oid::regclass::text FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
JOIN pg_class v ON v.oid = r.ev_class
JOIN pg_class t ON t.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
WHERE t.relnamespace = to_regnamespace(%s) AND v.relnamespace <> to_regnamespace(%s)
LIMIT 1;

-- name: shadowed_tables
-- The tables of the shadow schema (the second parameter) that have a copy in the live one.
SELECT s.relname FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
JOIN pg_class l ON l.relname = s.relname AND l.relkind IN ('r', 'p')
JOIN pg_namespace ln ON ln.oid = l.relnamespace AND ln.nspname = %s
WHERE n.nspname = %s AND s.relkind IN ('r', 'p');

-- name: grant_rebuild
GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.{table} TO {role};

-- name: place_reactor
INSERT INTO lufy.checkpoints (name, transaction_id, global_position)
VALUES (%s, lufy.read_barrier(), 0)
ON CONFLICT (name) DO NOTHING;
