"""`lufy migrate`: roles, database, ordered migrations in `sql/`, then `projections/` definitions.

Migrations run in order under an advisory lock, each in its own transaction with its checksum
recorded; an applied migration whose file changed stops everything. Projection definitions are
idempotent and re-applied whenever their checksum changes. Running it twice changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any, cast

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lufy.errors import LufyError
from lufy.eventstore.horizon import xid_horizon_problem
from lufy.sqlfiles import data_dir

__all__ = [
    "ANALYST_SETTINGS",
    "MigrationError",
    "MigrationReport",
    "ensure_analyst_role",
    "migrate",
    "password_matches",
    "scram_verifier",
]

# Any constant that no other code uses as an advisory lock key.
_LOCK_KEY = 0x4C55_4659_0001
APP_ROLE = "lufy_app"
ANALYST_ROLE = "lufy_analyst"


class MigrationError(LufyError):
    status = 500
    title = "Migration failed"


@dataclass
class MigrationReport:
    created_database: bool = False
    applied: list[str] = field(default_factory=list)
    projections: list[str] = field(default_factory=list)
    # What the sealing of existing events did this run (None: nothing left in clear).
    sealing: Any = None
    # Data keys wrapped again by the current DATA_KEY_SECRET this run (None: none had to be).
    rewrapped: Any = None


def _files(folder: Traversable) -> list[tuple[str, str]]:
    items = sorted((f.name, f) for f in folder.iterdir() if f.name.endswith(".sql"))
    return [(name, f.read_text(encoding="utf-8")) for name, f in items]


def _projection_files(folder: Traversable) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda f: f.name):
        if entry.is_dir():
            out.extend((f"{entry.name}/{n}", text) for n, text in _files(entry))
        elif entry.name.endswith(".sql"):
            out.append((entry.name, entry.read_text(encoding="utf-8")))
    return out


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _ensure_database(admin_url: str) -> bool:
    params = conninfo_to_dict(admin_url)
    dbname = str(params.get("dbname") or "lufy")
    try:
        psycopg.connect(admin_url, connect_timeout=5).close()
        return False
    except psycopg.OperationalError as exc:
        # Only a missing database is ours to fix; a missing role says "does not exist" too.
        if f'database "{dbname}" does not exist' not in str(exc):
            raise MigrationError(f"cannot connect to {dbname!r}: {_one_line(exc)}") from None
    maintenance = make_conninfo(admin_url, dbname="postgres")
    try:
        conn = psycopg.connect(maintenance, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise MigrationError(f"cannot create database {dbname!r}: {_one_line(exc)}") from None
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                return False  # another migrator created it a moment ago (catalog race)
            return True
    return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _ensure_roles(
    conn: psycopg.Connection[tuple[object, ...]], app_url: str, analyst_password: str | None
) -> None:
    app_password = str(conninfo_to_dict(app_url).get("password") or APP_ROLE)
    dbname = conn.info.dbname
    # Roles are cluster-wide; creating them races with other migrators on the same cluster.
    conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY + 1])
    for role, password in ((APP_ROLE, app_password),):
        row = conn.execute(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s", [role]
        ).fetchone()
        if row is None:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    "NOBYPASSRLS"
                ).format(sql.Identifier(role), sql.Literal(password))
            )
        elif row[0]:
            # Only when needed: advisory locks are per database, so migrators of two databases
            # both altering the (cluster-wide) role fail with "tuple concurrently updated".
            conn.execute(
                sql.SQL("ALTER ROLE {} NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(role))
            )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(dbname), sql.Identifier(role)
            )
        )
    ensure_analyst_role(conn, analyst_password)
    # Read models live in schema lufy; analysts see the analytics schema first.
    for role, path in ((APP_ROLE, "lufy, public"), (ANALYST_ROLE, "analytics, public")):
        conn.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
                sql.Identifier(role), sql.Identifier(dbname), sql.SQL(path)
            )
        )
    # One forgotten open transaction would hold back every reader of the log (DESIGN.md).
    conn.execute(
        sql.SQL(
            "ALTER ROLE {} IN DATABASE {} SET idle_in_transaction_session_timeout = '60s'"
        ).format(sql.Identifier(APP_ROLE), sql.Identifier(dbname))
    )
    # Analysts write nothing, temporary tables included (a write that needs no privilege on any
    # table, takes a transaction id and fills the disk); only the app role keeps the right.
    conn.execute(
        sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(dbname))
    )
    conn.execute(
        sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(APP_ROLE)
        )
    )


# What lufy_analyst's sessions get in the database, re-applied by every `lufy migrate`: a
# runaway query or a forgotten BEGIN ends on its own, and nothing is written by mistake.
ANALYST_SETTINGS = (
    ("default_transaction_read_only", "on"),
    ("statement_timeout", "15min"),
    ("idle_in_transaction_session_timeout", "5min"),
)


def ensure_analyst_role(
    conn: psycopg.Connection[tuple[object, ...]],
    password: str | None,
    *,
    role: str = ANALYST_ROLE,
) -> None:
    """Create or fix the analyst role: LOGIN with `password`, or NOLOGIN when None (a group
    role granted to people); never superuser or BYPASSRLS; read-only, time-limited sessions.

    The password is sent as a SCRAM verifier, never in clear, and only when the stored one does
    not already match it: roles are cluster-wide, and migrators of two databases altering the
    same role at once fail with "tuple concurrently updated".
    """
    dbname = conn.info.dbname
    row = conn.execute(
        "SELECT rolcanlogin, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s", [role]
    ).fetchone()
    if row is None:
        login = (
            sql.SQL("NOLOGIN")
            if password is None
            else sql.SQL("LOGIN PASSWORD {}").format(sql.Literal(scram_verifier(password)))
        )
        conn.execute(
            sql.SQL("CREATE ROLE {} {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS").format(
                sql.Identifier(role), login
            )
        )
    else:
        can_login, privileged = bool(row[0]), bool(row[1])
        if privileged:
            conn.execute(
                sql.SQL("ALTER ROLE {} NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(role))
            )
        stored = _stored_password(conn, role)
        if password is None:
            if can_login or stored != "":
                conn.execute(
                    sql.SQL("ALTER ROLE {} NOLOGIN PASSWORD NULL").format(sql.Identifier(role))
                )
        elif not can_login or stored is None or not password_matches(stored, role, password):
            conn.execute(
                sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(scram_verifier(password))
                )
            )
    conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(role)
        )
    )
    for name, value in ANALYST_SETTINGS:
        conn.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
                sql.Identifier(role),
                sql.Identifier(dbname),
                sql.Identifier(name),
                sql.Literal(value),
            )
        )


def _stored_password(conn: psycopg.Connection[tuple[object, ...]], role: str) -> str | None:
    """The role's stored verifier ("" when it has none), or None when this connection may not
    read pg_authid (an owner that is not a superuser, as on managed PostgreSQL)."""
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = %s", [role]
            ).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return str(row[0]) if row else ""


_SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 0) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of `password` (RFC 5802/7677), as `ALTER ROLE ...
    PASSWORD` accepts it pre-hashed: the clear password never reaches the server's logs."""
    salt = salt if salt is not None else os.urandom(16)
    iterations = iterations or _SCRAM_ITERATIONS
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def password_matches(stored: str, role: str, password: str) -> bool:
    """Whether a stored verifier (SCRAM-SHA-256 or md5) is that of `password`."""
    if stored.startswith("SCRAM-SHA-256$"):
        try:
            head, _keys = stored[len("SCRAM-SHA-256$") :].split("$", 1)
            iterations, salt = head.split(":", 1)
            expected = scram_verifier(
                password, salt=base64.b64decode(salt), iterations=int(iterations)
            )
        except ValueError:
            return False
        return hmac.compare_digest(expected, stored)
    if stored.startswith("md5"):
        digest = "md5" + hashlib.md5((password + role).encode()).hexdigest()  # noqa: S324
        return hmac.compare_digest(digest, stored)
    return False


_BOOKKEEPING = """
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
"""


# Part of the checksum of a projection definition: bumping it re-applies every definition once
# (they are idempotent), e.g. so that databases migrated before shadow schemas get them.
_SHADOW_MARK = "-- shadow: lufy_shadow\n"
LIVE_SCHEMA = "lufy"
SHADOW_SCHEMA = "lufy_shadow"


def _define_projection(
    conn: psycopg.Connection[tuple[object, ...]], name: str, text: str, say: Callable[[str], None]
) -> None:
    """Apply one projections/ file to the live schema, then to the shadow schema.

    Files use unqualified names; the first schema on the search_path receives what they create.
    The shadow pass runs in a savepoint and is undone when it rebinds anything outside the
    shadow schema to shadow tables (a qualified `analytics` view over unqualified tables): a
    file that cannot be shadowed only costs its projection rebuilds (reported), never the
    migration, and never the live objects.
    """
    conn.execute(f"SET LOCAL search_path = {LIVE_SCHEMA}, public")
    conn.execute(text.encode())
    if conn.execute("SELECT to_regnamespace(%s)", [SHADOW_SCHEMA]).fetchone() == (None,):
        return
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL search_path = {SHADOW_SCHEMA}, {LIVE_SCHEMA}, public")
            conn.execute(text.encode())
            leaked = conn.execute(_LEAKED_INTO_SHADOW, [SHADOW_SCHEMA, SHADOW_SCHEMA]).fetchone()
            if leaked is not None:
                raise _ShadowRefused(f"{leaked[0]} would read the shadow copy")
    except (psycopg.Error, _ShadowRefused) as exc:
        say(f"warning: {name} has no shadow copy in {SHADOW_SCHEMA} (no rebuilds): {exc}")
    conn.execute(f"SET LOCAL search_path = {LIVE_SCHEMA}, public")


class _ShadowRefused(Exception):
    pass


# A view or materialized view outside the shadow schema that reads a table inside it.
_LEAKED_INTO_SHADOW = """
SELECT v.oid::regclass::text FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
JOIN pg_class v ON v.oid = r.ev_class
JOIN pg_class t ON t.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
WHERE t.relnamespace = to_regnamespace(%s) AND v.relnamespace <> to_regnamespace(%s)
LIMIT 1
"""


def _grant_rebuild_rights(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The app role rebuilds read models: it may rewrite shadow tables, and replace the rows of
    the live tables that have a shadow copy (the swap is DELETE + INSERT in one transaction)."""
    rows = conn.execute(
        "SELECT s.relname FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace "
        "JOIN pg_class l ON l.relname = s.relname AND l.relkind IN ('r', 'p') "
        "JOIN pg_namespace ln ON ln.oid = l.relnamespace AND ln.nspname = %s "
        "WHERE n.nspname = %s AND s.relkind IN ('r', 'p')",
        [LIVE_SCHEMA, SHADOW_SCHEMA],
    ).fetchall()
    for (table,) in rows:
        for schema in (SHADOW_SCHEMA, LIVE_SCHEMA):
            conn.execute(
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {}.{} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(str(table)), sql.Identifier(APP_ROLE)
                )
            )


def _place_new_reactors(
    conn: psycopg.Connection[tuple[object, ...]], say: Callable[[str], None]
) -> None:
    """Give every reactor that has no checkpoint yet one at the current read barrier.

    A reactor new to a database starts at the head of the log (a new e-mail reactor must not
    mail everyone who ever signed up), but "the head" must be fixed when the code is deployed,
    not when a projector first happens to start: events appended in between (a sign-up before
    the projector ever ran) would otherwise be skipped.
    """
    from lufy.projections.discovery import all_projections

    for projection in all_projections():
        if projection.inline or not getattr(projection, "start_at_head", False):
            continue
        cur = conn.execute(
            "INSERT INTO lufy.checkpoints (name, transaction_id, global_position) "
            "VALUES (%s, lufy.read_barrier(), 0) "
            "ON CONFLICT (name) DO NOTHING",
            [projection.name],
        )
        if cur.rowcount:
            say(f"reactor {projection.name} starts at the current end of the log")


def migrate(
    admin_url: str,
    app_url: str,
    *,
    on_step: Callable[[str], None] | None = None,
    analyst_password: str | None = ANALYST_ROLE,
) -> MigrationReport:
    """Bring the database at `admin_url` up to date. Raises MigrationError on a refused change.

    `analyst_password` is lufy_analyst's (Settings.analyst_password); None makes it NOLOGIN.
    """
    report = MigrationReport(created_database=_ensure_database(admin_url))
    say = on_step or (lambda _msg: None)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            with conn.transaction():
                _ensure_roles(conn, app_url, analyst_password)
                conn.execute(_BOOKKEEPING)
            applied = dict(
                cast(
                    list[tuple[str, str]],
                    conn.execute(
                        "SELECT filename, checksum FROM lufy.schema_migrations"
                    ).fetchall(),
                )
            )
            files = _files(data_dir("sql"))
            names = {name for name, _ in files}
            missing = sorted(set(applied) - names)
            if missing:
                raise MigrationError(f"applied migration {missing[0]} is missing from sql/")
            # Every applied file is checked before anything runs: numbers are handed out in
            # ranges per team, so a new file may sort before an applied (and edited) one.
            for name, text in files:
                if name in applied and applied[name] != _checksum(text):
                    raise MigrationError(
                        f"migration {name} was edited after it was applied "
                        "(migrations are never edited: add a new one)"
                    )
            for name, text in files:
                digest = _checksum(text)
                if name in applied:
                    continue
                say(f"applying {name}")
                with conn.transaction():
                    conn.execute(text.encode())
                    conn.execute(
                        "INSERT INTO lufy.schema_migrations (filename, checksum) VALUES (%s, %s)",
                        [name, digest],
                    )
                report.applied.append(name)

            done = dict(
                cast(
                    list[tuple[str, str]],
                    conn.execute(
                        "SELECT filename, checksum FROM lufy.projection_definitions"
                    ).fetchall(),
                )
            )
            for name, text in _projection_files(data_dir("projections")):
                digest = _checksum(_SHADOW_MARK + text)
                if done.get(name) == digest:
                    continue
                say(f"defining {name}")
                with conn.transaction():
                    _define_projection(conn, name, text, say)
                    conn.execute(
                        "INSERT INTO lufy.projection_definitions (filename, checksum) "
                        "VALUES (%s, %s) ON CONFLICT (filename) DO UPDATE "
                        "SET checksum = excluded.checksum, applied_at = now()",
                        [name, digest],
                    )
                report.projections.append(name)
            with conn.transaction():
                _grant_rebuild_rights(conn)
                _place_new_reactors(conn, say)
                problem = xid_horizon_problem(conn)
            # Privacy: the one sanctioned rewrite of the log, idempotent (docs/privacy.md).
            from lufy.privacy.reseal import seal_existing_events

            report.sealing = seal_existing_events(conn, say)
            from lufy.privacy.rotation import rewrap_data_keys

            report.rewrapped = rewrap_data_keys(conn, say)
            if problem:
                raise MigrationError(problem)
        except psycopg.Error as exc:
            raise MigrationError(f"migration failed: {_one_line(exc)}") from exc
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    return report
