"""The database roles `lufy migrate` keeps right: lufy_app and lufy_analyst, SCRAM verifiers.

Statements are in `dbroles.sql`; names and literals are filled in with `psycopg.sql`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from lufy.sqlfiles import load_queries

__all__ = [
    "ANALYST_ROLE",
    "ANALYST_SETTINGS",
    "APP_ROLE",
    "ensure_analyst_role",
    "ensure_roles",
    "password_matches",
    "scram_verifier",
]

APP_ROLE = "lufy_app"
ANALYST_ROLE = "lufy_analyst"
_Q = load_queries("lufy", "dbroles.sql")
_Conn = psycopg.Connection[tuple[object, ...]]

# What lufy_analyst's sessions get in the database, re-applied by every `lufy migrate`: a
# runaway query or a forgotten BEGIN ends on its own, and nothing is written by mistake.
ANALYST_SETTINGS = (
    ("default_transaction_read_only", "on"),
    ("statement_timeout", "15min"),
    ("idle_in_transaction_session_timeout", "5min"),
)


def _ids(**names: str) -> dict[str, sql.Composable]:
    return {key: sql.Identifier(value) for key, value in names.items()}


def _role_setting(conn: _Conn, role: str, name: str, value: str) -> None:
    conn.execute(
        sql.SQL(_Q.role_setting).format(
            **_ids(role=role, database=conn.info.dbname, name=name), value=sql.Literal(value)
        )
    )


def ensure_roles(conn: _Conn, app_url: str, analyst_password: str | None, *, lock_key: int) -> None:
    """The app role (its password from `app_url`) and the analyst role, with what they may do
    in this database. `lock_key` serialises migrators of one cluster."""
    app_password = str(conninfo_to_dict(app_url).get("password") or APP_ROLE)
    dbname = conn.info.dbname
    conn.execute(_Q.roles_lock, [lock_key])
    row = conn.execute(_Q.role_privileged, [APP_ROLE]).fetchone()
    if row is None:
        login = sql.SQL(_Q.login_with_password).format(password=sql.Literal(app_password))
        conn.execute(sql.SQL(_Q.create_role).format(role=sql.Identifier(APP_ROLE), login=login))
    elif row[0]:
        # Only when needed: advisory locks are per database, so migrators of two databases
        # both altering the (cluster-wide) role fail with "tuple concurrently updated".
        conn.execute(sql.SQL(_Q.unprivilege_role).format(role=sql.Identifier(APP_ROLE)))
    conn.execute(sql.SQL(_Q.grant_connect).format(**_ids(database=dbname, role=APP_ROLE)))
    ensure_analyst_role(conn, analyst_password)
    # Read models live in schema lufy; analysts see the analytics schema first.
    for role, path in ((APP_ROLE, "lufy, public"), (ANALYST_ROLE, "analytics, public")):
        conn.execute(
            sql.SQL(_Q.role_search_path).format(
                **_ids(role=role, database=dbname), path=sql.SQL(path)
            )
        )
    # One forgotten open transaction would hold back every reader of the log (DESIGN.md).
    _role_setting(conn, APP_ROLE, "idle_in_transaction_session_timeout", "60s")
    # Analysts write nothing, temporary tables included (a write that needs no privilege on any
    # table, takes a transaction id and fills the disk); only the app role keeps the right.
    conn.execute(sql.SQL(_Q.revoke_temporary).format(**_ids(database=dbname)))
    conn.execute(sql.SQL(_Q.grant_temporary).format(**_ids(database=dbname, role=APP_ROLE)))


def ensure_analyst_role(conn: _Conn, password: str | None, *, role: str = ANALYST_ROLE) -> None:
    """Create or fix the analyst role: LOGIN with `password`, or NOLOGIN when None (a group
    role granted to people); never superuser or BYPASSRLS; read-only, time-limited sessions.

    The password is sent as a SCRAM verifier, never in clear, and only when the stored one does
    not already match it: roles are cluster-wide, and migrators of two databases altering the
    same role at once fail with "tuple concurrently updated".
    """
    row = conn.execute(_Q.role_state, [role]).fetchone()
    name = sql.Identifier(role)
    if row is None:
        login = (
            sql.SQL(_Q.no_login)
            if password is None
            else sql.SQL(_Q.login_with_password).format(
                password=sql.Literal(scram_verifier(password))
            )
        )
        conn.execute(sql.SQL(_Q.create_role).format(role=name, login=login))
    else:
        can_login, privileged = bool(row[0]), bool(row[1])
        if privileged:
            conn.execute(sql.SQL(_Q.unprivilege_role).format(role=name))
        stored = _stored_password(conn, role)
        if password is None:
            if can_login or stored != "":
                conn.execute(sql.SQL(_Q.disable_login).format(role=name))
        elif not can_login or stored is None or not password_matches(stored, role, password):
            verifier = sql.Literal(scram_verifier(password))
            conn.execute(sql.SQL(_Q.enable_login).format(role=name, password=verifier))
    conn.execute(sql.SQL(_Q.grant_connect).format(**_ids(database=conn.info.dbname, role=role)))
    for setting, value in ANALYST_SETTINGS:
        _role_setting(conn, role, setting, value)


def _stored_password(conn: _Conn, role: str) -> str | None:
    """The role's stored verifier ("" when it has none), or None when this connection may not
    read pg_authid (an owner that is not a superuser, as on managed PostgreSQL)."""
    try:
        with conn.transaction():
            row = conn.execute(_Q.stored_password, [role]).fetchone()
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
