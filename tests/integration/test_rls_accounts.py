"""Row-Level Security on the accounts read models: user A never reads or changes B's rows,
through any route, nor through SQL run as lufy_app with A's id set, whatever the WHERE says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from lufy.bootstrap import Container
from lufy.db import set_context
from lufy.settings import Settings
from tests.helpers.accounts import TestUser, create_user
from tests.helpers.http import api_client


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


@pytest.fixture
async def a(container: Container) -> TestUser:
    return await create_user(container, role="artist", email="a@example.com")


@pytest.fixture
async def b(container: Container) -> TestUser:
    return await create_user(container, role="listener", email="b@example.com")


@asynccontextmanager
async def as_user(
    conn: AsyncConnection[Any], user_id: Any, role: str = "listener"
) -> AsyncIterator[AsyncConnection[Any]]:
    async with conn.transaction():
        await set_context(conn, user_id=user_id, role=role)
        yield conn


async def rows(conn: AsyncConnection[Any], query: str, params: Any = None) -> list[Any]:
    cur = await conn.execute(query, params)  # type: ignore[arg-type]
    return await cur.fetchall()


# --- through SQL as lufy_app --------------------------------------------------------------


async def test_the_app_role_is_not_the_owner_and_cannot_bypass_rls(
    app_conn: AsyncConnection[Any],
) -> None:
    [(user, bypass, superuser)] = await rows(
        app_conn,
        "SELECT current_user, rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    assert (user, bypass, superuser) == ("lufy_app", False, False)
    forced = await rows(
        app_conn,
        "SELECT relname FROM pg_class WHERE relnamespace = 'lufy'::regnamespace "
        "AND relname = ANY(%s) AND relrowsecurity AND relforcerowsecurity "
        "AND pg_get_userbyid(relowner) <> 'lufy_app' ORDER BY relname",
        [["users", "sessions", "refresh_tokens", "account_tokens"]],
    )
    assert [r[0] for r in forced] == ["account_tokens", "refresh_tokens", "sessions", "users"]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT id FROM lufy.users",
        "SELECT id FROM lufy.users WHERE id = %(b)s",
        "SELECT id FROM lufy.users WHERE id = %(b)s OR true",
        "SELECT id FROM lufy.users WHERE email = 'b@example.com'",
        "SELECT id FROM lufy.users WHERE id IN (SELECT user_id FROM lufy.sessions)",
    ],
)
async def test_a_user_reads_only_their_own_user_row(
    app_conn: AsyncConnection[Any], a: TestUser, b: TestUser, query: str
) -> None:
    async with as_user(app_conn, a.id, "artist"):
        found = {r[0] for r in await rows(app_conn, query, {"b": b.id})}
    assert b.id not in found
    assert found <= {a.id}


@pytest.mark.parametrize(
    "query",
    [
        "SELECT id, user_id FROM lufy.sessions",
        "SELECT id, user_id FROM lufy.sessions WHERE user_id = %(b)s",
        "SELECT id, user_id FROM lufy.sessions WHERE user_id <> %(a)s OR 1 = 1",
        "SELECT id, user_id FROM lufy.sessions WHERE id = %(b_session)s",
    ],
)
async def test_a_user_reads_only_their_own_sessions(
    app_conn: AsyncConnection[Any], a: TestUser, b: TestUser, query: str
) -> None:
    params = {"a": a.id, "b": b.id, "b_session": b.session_id}
    async with as_user(app_conn, a.id):
        found = await rows(app_conn, query, params)
    assert all(user_id == a.id for _, user_id in found)
    assert b.session_id not in {sid for sid, _ in found}


@pytest.mark.parametrize("table", ["refresh_tokens", "account_tokens"])
async def test_token_hashes_are_invisible_to_every_user_and_admin(
    app_conn: AsyncConnection[Any], a: TestUser, table: str
) -> None:
    for role in ("listener", "artist", "admin"):
        async with as_user(app_conn, a.id, role):
            assert await rows(app_conn, f"SELECT * FROM lufy.{table}") == []
    async with as_user(app_conn, None, "system"):
        assert await rows(app_conn, "SELECT * FROM lufy.refresh_tokens") != []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE lufy.users SET display_name = 'pwned' WHERE id = %(b)s",
        "UPDATE lufy.users SET display_name = 'pwned' WHERE id = %(b)s OR true",
        "UPDATE lufy.users SET password_hash = 'x', email_verified = false WHERE email LIKE 'b%%'",
        "UPDATE lufy.sessions SET revoked_at = now() WHERE user_id = %(b)s",
        "UPDATE lufy.sessions SET revoked_at = now() WHERE true",
        "UPDATE lufy.refresh_tokens SET used_at = now()",
        "UPDATE lufy.account_tokens SET used_at = now()",
    ],
)
async def test_a_user_changes_none_of_anothers_rows_whatever_the_where(
    app_conn: AsyncConnection[Any],
    admin_conn: AsyncConnection[Any],
    a: TestUser,
    b: TestUser,
    statement: str,
) -> None:
    snapshot = (
        "SELECT (SELECT row(u.*)::text FROM lufy.users u WHERE id = %(b)s), "
        "(SELECT string_agg(row(s.*)::text, ',') FROM lufy.sessions s WHERE user_id = %(b)s), "
        "(SELECT string_agg(row(r.*)::text, ',') FROM lufy.refresh_tokens r "
        " WHERE user_id = %(b)s)"
    )
    before = await rows(admin_conn, snapshot, {"b": b.id})
    async with as_user(app_conn, a.id, "artist"):
        await app_conn.execute(statement, {"b": b.id})  # type: ignore[arg-type]
    assert await rows(admin_conn, snapshot, {"b": b.id}) == before


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO lufy.users (id, email, display_name, role) "
        "VALUES (gen_random_uuid(), 'evil@example.com', 'E', 'admin')",
        "INSERT INTO lufy.sessions (id, user_id, method, created_at, last_seen_at, expires_at) "
        "VALUES (gen_random_uuid(), %(b)s, 'password', now(), now(), now() + interval '1 day')",
        "INSERT INTO lufy.refresh_tokens (token_hash, session_id, user_id, issued_at, expires_at) "
        "VALUES ('h', gen_random_uuid(), %(b)s, now(), now() + interval '1 day')",
        "UPDATE lufy.sessions SET user_id = %(b)s WHERE user_id = %(a)s",
    ],
)
async def test_a_user_cannot_plant_rows_for_another(
    app_conn: AsyncConnection[Any], a: TestUser, b: TestUser, statement: str
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with as_user(app_conn, a.id):
            await app_conn.execute(statement, {"a": a.id, "b": b.id})  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["listener", "admin"])
@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM lufy.users",
        "DELETE FROM lufy.sessions",
        "DELETE FROM lufy.refresh_tokens",
        "DELETE FROM lufy.account_tokens",
    ],
)
async def test_no_user_deletes_account_rows_not_even_an_admin(
    app_conn: AsyncConnection[Any], a: TestUser, b: TestUser, statement: str, role: str
) -> None:
    # Rebuilds may DELETE (they run as system); no policy lets a user do it.
    async with as_user(app_conn, a.id, role):
        cur = await app_conn.execute(statement)  # type: ignore[arg-type]
        assert cur.rowcount == 0


async def test_the_app_role_cannot_truncate_accounts(
    app_conn: AsyncConnection[Any], a: TestUser
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with as_user(app_conn, a.id, "admin"):
            await app_conn.execute("TRUNCATE lufy.users")


async def test_a_guest_sees_no_account_rows(
    app_conn: AsyncConnection[Any], a: TestUser, b: TestUser
) -> None:
    async with as_user(app_conn, None, None):  # type: ignore[arg-type]
        assert await rows(app_conn, "SELECT id FROM lufy.users") == []
        assert await rows(app_conn, "SELECT id FROM lufy.sessions") == []
    assert await rows(app_conn, "SELECT id FROM lufy.users") == []


async def test_an_admin_sees_every_user(
    app_conn: AsyncConnection[Any], a: TestUser, b: TestUser
) -> None:
    async with as_user(app_conn, a.id, "admin"):
        found = {r[0] for r in await rows(app_conn, "SELECT id FROM lufy.users")}
    assert {a.id, b.id} <= found


async def test_the_user_context_ends_with_its_transaction(
    app_conn: AsyncConnection[Any], a: TestUser
) -> None:
    async with as_user(app_conn, a.id):
        assert len(await rows(app_conn, "SELECT id FROM lufy.users")) == 1
    [(uid, role)] = await rows(
        app_conn,
        "SELECT current_setting('app.current_user_id', true), "
        "current_setting('app.current_role', true)",
    )
    assert not uid
    assert not role
    assert await rows(app_conn, "SELECT id FROM lufy.users") == []


# --- through the routes ---------------------------------------------------------------------


async def test_through_the_api_a_user_sees_and_revokes_only_their_own_sessions(
    container: Container, a: TestUser, b: TestUser
) -> None:
    async with api_client(container) as client:
        listed = (await client.get("/api/auth/sessions", headers=a.headers)).json()["sessions"]
        assert [s["id"] for s in listed] == [str(a.session_id)]
        me = (await client.get("/api/auth/session", headers=a.headers)).json()
        assert me["user"]["id"] == str(a.id)
        assert me["user"]["email"] == "a@example.com"

        attempt = await client.delete(f"/api/auth/sessions/{b.session_id}", headers=a.headers)
        assert attempt.status_code == 404
        assert (await client.get("/api/auth/session", headers=b.headers)).status_code == 200

        others = await client.post("/api/auth/sessions/revoke-others", headers=a.headers)
        assert others.json() == {"revoked": 0}
        assert (await client.get("/api/auth/session", headers=b.headers)).status_code == 200

        changed = await client.post(
            "/api/auth/password/change",
            json={"current_password": a.password, "new_password": "a's brand new passphrase"},
            headers=a.headers,
        )
        assert changed.json() == {"revoked": 0}
        assert (await client.get("/api/auth/session", headers=b.headers)).status_code == 200
        b_in = await client.post(
            "/api/auth/sign-in", json={"email": b.email, "password": b.password}
        )
        assert b_in.status_code == 200


async def test_an_admin_token_still_cannot_revoke_anothers_session_through_the_api(
    container: Container, b: TestUser
) -> None:
    admin = await create_user(container, role="admin")
    async with api_client(container) as client:
        attempt = await client.delete(f"/api/auth/sessions/{b.session_id}", headers=admin.headers)
        assert attempt.status_code == 404
        assert (await client.get("/api/auth/session", headers=b.headers)).status_code == 200
