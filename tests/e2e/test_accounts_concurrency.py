"""Races on the auth routes: one winner, clear 4xx for the rest, never a 500 or a double write."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from lufy.bootstrap import Container
from lufy.settings import Settings
from tests.helpers.accounts import create_user, last_token
from tests.helpers.http import api_client


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container) as c:
        yield c


async def count(container: Container, query: str) -> int:
    async with container.db.transaction(role="system") as conn:
        cur = await conn.execute(query)  # type: ignore[arg-type]
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_ten_simultaneous_sign_ups_with_one_address_make_one_account(
    client: httpx.AsyncClient, container: Container
) -> None:
    body = {
        "email": "race@example.com",
        "password": "a long racing passphrase",
        "display_name": "R",
    }
    responses = await asyncio.gather(
        *(client.post("/api/auth/sign-up", json=body) for _ in range(10))
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 9}
    assert await count(container, "SELECT count(*) FROM lufy.users") == 1
    assert (
        await count(
            container, "SELECT count(*) FROM lufy.events WHERE type = 'accounts.user_registered'"
        )
        == 1
    )


async def test_a_refresh_token_raced_five_times_rotates_once_and_the_session_dies(
    client: httpx.AsyncClient, container: Container
) -> None:
    user = await create_user(container)
    responses = await asyncio.gather(
        *(
            client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
            for _ in range(5)
        )
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 401: 4}
    # The losers presented an already-used token: that is reuse, the session is revoked.
    assert (
        await count(container, "SELECT count(*) FROM lufy.sessions WHERE revoked_at IS NOT NULL")
        == 1
    )
    winner = next(r for r in responses if r.status_code == 200).json()
    again = await client.post("/api/auth/refresh", json={"refresh_token": winner["refresh_token"]})
    assert again.status_code == 401


async def test_a_magic_link_followed_five_times_at_once_signs_in_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    user = await create_user(container, email="ml-race@example.com")
    await client.post("/api/auth/magic-link", json={"email": user.email})
    token = await last_token(container, user.email, "sign-in link")
    responses = await asyncio.gather(
        *(client.post("/api/auth/magic-link/verify", json={"token": token}) for _ in range(5))
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 400: 4}
    assert (
        await count(
            container,
            "SELECT count(*) FROM lufy.sessions WHERE method = 'magic_link'",
        )
        == 1
    )
