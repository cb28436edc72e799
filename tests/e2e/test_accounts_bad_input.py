"""Bad input to /api/auth: always a clear 4xx problem+json, never a 500, never a partial write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from lufy.bootstrap import Container
from lufy.settings import Settings
from tests.helpers.accounts import create_user
from tests.helpers.http import api_client

GOOD = {
    "email": "bad-input@example.com",
    "password": "a long and unusual passphrase",
    "display_name": "Bea",
    "role": "listener",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container) as c:
        yield c


async def event_count(container: Container) -> int:
    async with container.db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM lufy.events")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    detail: str = body["detail"]
    assert detail
    return detail


@pytest.mark.parametrize(
    ("body", "status", "mentions"),
    [
        ({**GOOD, "email": "not-an-address"}, 422, "not a valid e-mail"),
        ({**GOOD, "email": "a@b"}, 422, "not a valid e-mail"),
        ({**GOOD, "password": "short1!"}, 422, "at least 8"),
        ({**GOOD, "password": "x" * 64 + "y" * 65}, 422, "at most 128"),
        ({**GOOD, "password": "Password123"}, 422, "too common"),
        ({**GOOD, "password": "iloveyou2024"}, 422, "too common"),
        ({**GOOD, "password": "aaaaaaaaaaaa"}, 422, "too common"),
        ({**GOOD, "role": "admin"}, 400, "role"),
        ({**GOOD, "is_admin": True}, 400, "is_admin"),
        ({**GOOD, "email": 42}, 400, "email"),
        ({**GOOD, "display_name": ""}, 400, "display_name"),
        ({**GOOD, "display_name": "   "}, 400, "display_name"),
        ({k: v for k, v in GOOD.items() if k != "password"}, 400, "password"),
        ([GOOD], 400, ""),
    ],
)
async def test_a_bad_sign_up_is_a_clear_4xx_and_writes_nothing(
    client: httpx.AsyncClient, container: Container, body: Any, status: int, mentions: str
) -> None:
    response = await client.post("/api/auth/sign-up", json=body)
    assert mentions in problem(response, status)
    assert await event_count(container) == 0


async def test_malformed_json_is_a_400(client: httpx.AsyncClient, container: Container) -> None:
    response = await client.post(
        "/api/auth/sign-up",
        content=b'{"email": "x@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    problem(response, 400)
    assert await event_count(container) == 0


async def test_an_oversized_body_is_a_413(client: httpx.AsyncClient, container: Container) -> None:
    response = await client.post("/api/auth/sign-up", json={**GOOD, "display_name": "x" * 20_000})
    problem(response, 413)
    assert await event_count(container) == 0


@pytest.mark.parametrize("path", ["/api/auth/verify-email", "/api/auth/magic-link/verify"])
@pytest.mark.parametrize(
    "token", ["forged", "A" * 43, "x" * 512, "'; DROP TABLE lufy.users; --", "\u00e9\u00e8"]
)
async def test_forged_tokens_are_refused_with_a_400(
    client: httpx.AsyncClient, container: Container, path: str, token: str
) -> None:
    response = await client.post(path, json={"token": token})
    assert "not valid" in problem(response, 400)
    assert await event_count(container) == 0


async def test_a_forged_reset_token_is_refused_and_changes_no_password(
    client: httpx.AsyncClient, container: Container
) -> None:
    user = await create_user(container, email="victim@example.com")
    before = await event_count(container)
    response = await client.post(
        "/api/auth/password/reset",
        json={"token": "guessed-token", "password": "attacker passphrase 1"},
    )
    problem(response, 400)
    assert await event_count(container) == before
    signed_in = await client.post(
        "/api/auth/sign-in", json={"email": user.email, "password": user.password}
    )
    assert signed_in.status_code == 200


async def test_an_overlong_token_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/verify-email", json={"token": "x" * 10_000})
    problem(response, 400)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/sign-in", {"email": "a@example.com"}),
        ("/api/auth/sign-in", {"email": "a@example.com", "password": 5}),
        ("/api/auth/sign-in", {"email": "a@example.com", "password": "x", "remember": True}),
        ("/api/auth/refresh", {}),
        ("/api/auth/refresh", {"refresh_token": None}),
        ("/api/auth/magic-link", {"email": ["a@example.com"]}),
        ("/api/auth/password/forgot", {"mail": "a@example.com"}),
        ("/api/auth/password/reset", {"token": "t"}),
    ],
)
async def test_wrong_shapes_are_400s_naming_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    problem(await client.post(path, json=body), 400)


async def test_an_invalid_address_for_a_magic_link_is_a_422_for_everyone(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/magic-link", json={"email": "nope"})
    assert "not a valid e-mail" in problem(response, 422)


async def test_a_session_id_that_is_not_a_uuid_is_a_4xx(
    client: httpx.AsyncClient, container: Container
) -> None:
    user = await create_user(container)
    response = await client.delete("/api/auth/sessions/not-a-uuid", headers=user.headers)
    assert 400 <= response.status_code < 500


async def test_routes_needing_a_user_answer_401_without_a_token(
    client: httpx.AsyncClient,
) -> None:
    for method, path in [
        ("GET", "/api/auth/session"),
        ("GET", "/api/auth/sessions"),
        ("POST", "/api/auth/sign-out"),
        ("POST", "/api/auth/sessions/revoke-others"),
        ("DELETE", "/api/auth/sessions/00000000-0000-0000-0000-000000000001"),
    ]:
        response = await client.request(method, path)
        assert "bearer" in problem(response, 401).lower()
