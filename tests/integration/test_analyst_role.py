"""The analyst role (lufy_analyst): what an analyst's session may do, and that it cannot hold
the log's readers back (sql/0400, `lufy.migrate.ensure_analyst_role`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import errors, sql

from lufy.eventstore import Checkpoint
from lufy.migrate import (
    ANALYST_SETTINGS,
    ensure_analyst_role,
    migrate,
    password_matches,
    scram_verifier,
)
from lufy.projections.operations import wait_for_projection
from lufy.projections.runner import Projector
from lufy.settings import Settings
from tests.conftest import ADMIN_BASE, admin_url, app_url

from ._projection_helpers import (
    FAST,
    CountingProjection,
    append_counted,
    counted,
    create_tables,
    make_store,
)


def _url_as(settings: Settings, role: str) -> str:
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(netloc=f"{role}:{role}@{parts.hostname}:{parts.port or 5432}"))


@contextlib.asynccontextmanager
async def _open_transaction_with_an_xid(url: str) -> AsyncIterator[int]:
    """A session of `url`'s role inside a transaction that has taken a transaction id (what a
    temporary table, or simply pg_current_xact_id(), does), held until the block ends."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT pg_current_xact_id()::text::bigint")
        row = await cur.fetchone()
        assert row is not None
        yield int(row[0])
        await conn.rollback()


@contextlib.asynccontextmanager
async def _running(projector: Projector) -> AsyncIterator[Projector]:
    task = asyncio.create_task(projector.run())
    try:
        yield projector
    finally:
        projector.stop()
        await asyncio.wait_for(task, timeout=20)


@pytest.fixture
def throwaway_role(dbname: str) -> Iterator[str]:
    """A cluster role of this test alone (lufy_analyst itself is shared by every suite running
    on the cluster: its password must not change under them)."""
    role = f"lufy_t_role_{uuid.uuid4().hex[:10]}"
    yield role
    with psycopg.connect(ADMIN_BASE, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
            conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                    sql.Identifier(dbname), sql.Identifier(role)
                )
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(
                    sql.Identifier(role), sql.Identifier(dbname)
                )
            )
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_an_analyst_holding_a_transaction_open_does_not_delay_a_projection(
    settings: Settings, app_conn: Any
) -> None:
    await create_tables(settings.DATABASE_ADMIN_URL)
    store = make_store()
    async with _open_transaction_with_an_xid(_url_as(settings, "lufy_analyst")) as analyst_xid:
        [position] = await append_counted(app_conn, store, "after-the-analyst", 1)
        projector = Projector(settings, [CountingProjection()], options=FAST, store=store)
        async with _running(projector):
            # Before sql/0400 this waited for the analyst's transaction: the full minute.
            applied = await wait_for_projection(app_conn, "test_counter", position, timeout=60)
        assert applied
        assert await counted(app_conn) == 1
        cur = await app_conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_xid::text::bigint = %s",
            [analyst_xid % 2**32],
        )
        assert await cur.fetchone() == (1,)  # the analyst's transaction is still open


async def test_an_open_transaction_of_a_role_that_may_append_still_holds_readers_back(
    settings: Settings, app_conn: Any, throwaway_role: str
) -> None:
    # A person granted lufy_app may append (after SET ROLE): their transaction counts.
    with psycopg.connect(settings.DATABASE_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOINHERIT IN ROLE lufy_app").format(
                sql.Identifier(throwaway_role)
            )
        )
    store = make_store()
    async with _open_transaction_with_an_xid(_url_as(settings, throwaway_role)):
        result_positions = await append_counted(app_conn, store, "behind-a-writer", 1)
        held = await store.read_all(app_conn, Checkpoint.START)
        assert held.events == []
    page = await store.read_all(app_conn, held.checkpoint)
    assert [e.global_position for e in page.events] == result_positions


async def test_an_analyst_can_neither_write_nor_create_temporary_tables(
    settings: Settings, dbname: str
) -> None:
    # Test databases are cloned from a template, and CREATE DATABASE does not copy database
    # privileges: give this one what `lufy migrate` gives a database.
    migrate(admin_url(dbname), app_url(dbname))
    async with await psycopg.AsyncConnection.connect(
        _url_as(settings, "lufy_analyst"), autocommit=True
    ) as conn:
        shown = {}
        for name, _ in ANALYST_SETTINGS:
            cur = await conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name)))
            row = await cur.fetchone()
            assert row is not None
            shown[name] = row[0]
        assert shown == dict(ANALYST_SETTINGS)
        with pytest.raises(errors.ReadOnlySqlTransaction):
            await conn.execute("CREATE TEMPORARY TABLE scratch (x int)")
        # Read-only by default is a setting the session may change; privileges are not.
        await conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute("CREATE TEMPORARY TABLE scratch (x int)")
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute("CREATE TABLE analytics.scratch (x int)")
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute(
                "INSERT INTO lufy.events (event_id, stream_type, stream_id, type, data) "
                "VALUES (gen_random_uuid(), 's', '1', 't', '{}')"
            )
    # The app role keeps what it had.
    async with await psycopg.AsyncConnection.connect(settings.DATABASE_URL) as app:
        await app.execute("CREATE TEMPORARY TABLE scratch (x int)")


def test_without_a_password_the_analyst_role_cannot_log_in(
    dbname: str, throwaway_role: str
) -> None:
    with psycopg.connect(admin_url(dbname), autocommit=True) as conn:
        ensure_analyst_role(conn, "first password", role=throwaway_role)
        row = conn.execute(
            "SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = %s", [throwaway_role]
        ).fetchone()
        assert row is not None
        assert row[0] is True
        assert password_matches(row[1], throwaway_role, "first password")

        # Production with LUFY_ANALYST_PASSWORD unset: a group role for `GRANT ... TO person`.
        ensure_analyst_role(conn, None, role=throwaway_role)
        assert conn.execute(
            "SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = %s", [throwaway_role]
        ).fetchone() == (False, None)
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        psycopg.connect(
            urlunsplit(
                urlsplit(admin_url(dbname))._replace(
                    netloc=f"{throwaway_role}@127.0.0.1:{urlsplit(ADMIN_BASE).port or 5432}"
                )
            )
        )


def test_a_new_analyst_password_replaces_the_old_one_and_an_unchanged_one_is_left_alone(
    dbname: str, throwaway_role: str
) -> None:
    with psycopg.connect(admin_url(dbname), autocommit=True) as conn:

        def stored() -> str:
            row = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [throwaway_role]
            ).fetchone()
            assert row is not None
            return str(row[0])

        ensure_analyst_role(conn, "old password", role=throwaway_role)
        first = stored()
        ensure_analyst_role(conn, "old password", role=throwaway_role)
        assert stored() == first  # not re-altered: roles are cluster-wide, migrators race
        ensure_analyst_role(conn, "new password", role=throwaway_role)
        assert password_matches(stored(), throwaway_role, "new password")
        assert not password_matches(stored(), throwaway_role, "old password")


def test_the_scram_verifier_is_the_one_postgresql_computes(
    dbname: str, throwaway_role: str
) -> None:
    password = "an analyst's passphrase, 42"
    with psycopg.connect(admin_url(dbname), autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(
            sql.SQL("CREATE ROLE {} PASSWORD {}").format(
                sql.Identifier(throwaway_role), sql.Literal(password)
            )
        )
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [throwaway_role]
        ).fetchone()
    assert row is not None
    server = str(row[0])
    iterations, salt = server.removeprefix("SCRAM-SHA-256$").split("$", 1)[0].split(":", 1)
    ours = scram_verifier(password, salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == server
    assert password_matches(server, throwaway_role, password)
    assert not password_matches(server, throwaway_role, password + "!")
