"""`lufy migrate`: roles, database, ordered migrations in `sql/`, then `projections/` definitions.

Migrations run in order under an advisory lock, each in its own transaction with its checksum
recorded; an applied migration whose file changed stops everything. Projection definitions are
idempotent and re-applied whenever their checksum changes. Running it twice changes nothing.
Statements are in `migrate.sql`; the roles are `lufy.dbroles`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any, LiteralString, cast

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lufy.analytics import counters, listeners
from lufy.dbroles import (
    ANALYST_ROLE,
    ANALYST_SETTINGS,
    APP_ROLE,
    ensure_analyst_role,
    ensure_roles,
    password_matches,
    scram_verifier,
)
from lufy.errors import LufyError
from lufy.eventstore.horizon import xid_horizon_problem
from lufy.privacy.reseal import seal_existing_events
from lufy.privacy.rotation import rewrap_data_keys
from lufy.projections.discovery import all_projections
from lufy.sqlfiles import data_dir, load_queries

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
_Q = load_queries("lufy", "migrate.sql")
_Conn = psycopg.Connection[tuple[object, ...]]


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
        exists = conn.execute(_Q.database_exists, [dbname]).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL(_Q.create_database).format(database=sql.Identifier(dbname)))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                return False  # another migrator created it a moment ago (catalog race)
            return True
    return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# Part of the checksum of a projection definition: bumping it re-applies every definition once
# (they are idempotent), e.g. so that databases migrated before shadow schemas get them.
_SHADOW_MARK = "-- shadow: lufy_shadow\n"
LIVE_SCHEMA = "lufy"
SHADOW_SCHEMA = "lufy_shadow"


def _search_path(conn: _Conn, *schemas: str) -> None:
    names = sql.SQL(", ").join(sql.Identifier(schema) for schema in schemas)
    conn.execute(sql.SQL(_Q.set_search_path).format(schemas=names))


def _define_projection(conn: _Conn, name: str, text: str, say: Callable[[str], None]) -> None:
    """Apply one projections/ file to the live schema, then to the shadow schema.

    Files use unqualified names; the first schema on the search_path receives what they create.
    The shadow pass runs in a savepoint and is undone when it rebinds anything outside the
    shadow schema to shadow tables (a qualified `analytics` view over unqualified tables): a
    file that cannot be shadowed only costs its projection rebuilds (reported), never the
    migration, and never the live objects.
    """
    _search_path(conn, LIVE_SCHEMA, "public")
    conn.execute(text.encode())
    if conn.execute(_Q.schema_exists, [SHADOW_SCHEMA]).fetchone() == (None,):
        return
    try:
        with conn.transaction():
            _search_path(conn, SHADOW_SCHEMA, LIVE_SCHEMA, "public")
            conn.execute(text.encode())
            leaked = conn.execute(_Q.leaked_into_shadow, [SHADOW_SCHEMA, SHADOW_SCHEMA]).fetchone()
            if leaked is not None:
                raise _ShadowRefused(f"{leaked[0]} would read the shadow copy")
    except (psycopg.Error, _ShadowRefused) as exc:
        say(f"warning: {name} has no shadow copy in {SHADOW_SCHEMA} (no rebuilds): {exc}")
    _search_path(conn, LIVE_SCHEMA, "public")


class _ShadowRefused(Exception):
    pass


def _grant_rebuild_rights(conn: _Conn) -> None:
    """The app role rebuilds read models: it may rewrite shadow tables, and replace the rows of
    the live tables that have a shadow copy (the swap is DELETE + INSERT in one transaction)."""
    rows = conn.execute(_Q.shadowed_tables, [LIVE_SCHEMA, SHADOW_SCHEMA]).fetchall()
    for (table,) in rows:
        for schema in (SHADOW_SCHEMA, LIVE_SCHEMA):
            names = {"schema": schema, "table": str(table), "role": APP_ROLE}
            conn.execute(
                sql.SQL(_Q.grant_rebuild).format(
                    **{key: sql.Identifier(value) for key, value in names.items()}
                )
            )


def _place_new_reactors(conn: _Conn, say: Callable[[str], None]) -> None:
    """Give every reactor that has no checkpoint yet one at the current read barrier.

    A reactor new to a database starts at the head of the log (a new e-mail reactor must not
    mail everyone who ever signed up), but "the head" must be fixed when the code is deployed,
    not when a projector first happens to start: events appended in between (a sign-up before
    the projector ever ran) would otherwise be skipped.
    """
    for projection in all_projections():
        if projection.inline or not getattr(projection, "start_at_head", False):
            continue
        if conn.execute(_Q.place_reactor, [projection.name]).rowcount:
            say(f"reactor {projection.name} starts at the current end of the log")


def _recorded(conn: _Conn, query: LiteralString) -> dict[str, str]:
    return dict(cast(list[tuple[str, str]], conn.execute(query).fetchall()))


def _apply_migrations(conn: _Conn, say: Callable[[str], None], report: MigrationReport) -> None:
    """Run the files of sql/ not applied yet, in order, each in its own transaction."""
    applied = _recorded(conn, _Q.applied_migrations)
    files = _files(data_dir("sql"))
    names = {name for name, _ in files}
    missing = sorted(set(applied) - names)
    if missing:
        raise MigrationError(f"applied migration {missing[0]} is missing from sql/")
    # Every applied file is checked before anything runs: numbers are handed out in ranges per
    # team, so a new file may sort before an applied (and edited) one.
    for name, text in files:
        if name in applied and applied[name] != _checksum(text):
            raise MigrationError(
                f"migration {name} was edited after it was applied "
                "(migrations are never edited: add a new one)"
            )
    for name, text in files:
        if name in applied:
            continue
        say(f"applying {name}")
        with conn.transaction():
            conn.execute(text.encode())
            conn.execute(_Q.record_migration, [name, _checksum(text)])
        report.applied.append(name)


def _define_projections(conn: _Conn, say: Callable[[str], None], report: MigrationReport) -> None:
    """(Re-)apply the projections/ files whose checksum changed."""
    done = _recorded(conn, _Q.defined_projections)
    for name, text in _projection_files(data_dir("projections")):
        digest = _checksum(_SHADOW_MARK + text)
        if done.get(name) == digest:
            continue
        say(f"defining {name}")
        with conn.transaction():
            _define_projection(conn, name, text, say)
            conn.execute(_Q.record_projection, [name, digest])
        report.projections.append(name)


def _fill_new_levels(conn: _Conn, say: Callable[[str], None]) -> None:
    """Rows of a level of blocks that tables of an older version lack (hours from half past:
    lufy/analytics/listeners.py), derived from their existing rows, live and shadow: operators
    upgrade without a rebuild."""
    for schemas in ((LIVE_SCHEMA, "public"), (SHADOW_SCHEMA, LIVE_SCHEMA, "public")):
        if conn.execute(_Q.schema_exists, [schemas[0]]).fetchone() == (None,):
            continue
        with conn.transaction():
            _search_path(conn, *schemas)
            written = listeners.fill_offset_hours(conn) + counters.fill_offset_hours(conn)
        if written:
            say(f"analytics: {written} rows of hours from half past in {schemas[0]}")


def _finish(conn: _Conn, say: Callable[[str], None], report: MigrationReport) -> None:
    """Rights for rebuilds, new reactors' checkpoints, sealing; then the xid horizon check."""
    with conn.transaction():
        _grant_rebuild_rights(conn)
        _place_new_reactors(conn, say)
        problem = xid_horizon_problem(conn)
    # Privacy: the one sanctioned rewrite of the log, idempotent (docs/privacy.md).
    report.sealing = seal_existing_events(conn, say)
    report.rewrapped = rewrap_data_keys(conn, say)
    if problem:
        raise MigrationError(problem)


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
        conn.execute(_Q.lock, [_LOCK_KEY])
        try:
            with conn.transaction():
                ensure_roles(conn, app_url, analyst_password, lock_key=_LOCK_KEY + 1)
                conn.execute(_Q.bookkeeping)
            _apply_migrations(conn, say, report)
            _define_projections(conn, say, report)
            _fill_new_levels(conn, say)
            _finish(conn, say, report)
        except psycopg.Error as exc:
            raise MigrationError(f"migration failed: {_one_line(exc)}") from exc
        finally:
            conn.execute(_Q.unlock, [_LOCK_KEY])
    return report
