"""Attacks on accounts, over HTTP, each named after what it tries: account pre-hijacking,
e-mailed links that outlive a password change, addresses that are not plain addresses, deeply
nested JSON on the credential routes, and probing sign-up for registered addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from lufy.bootstrap import Container
from lufy.settings import Settings
from tests.helpers.accounts import auth_headers, last_token
from tests.helpers.http import api_client

VICTIM = "victim@example.com"
ATTACKER_PASSWORD = "the attacker's own passphrase"
PASSWORD = "a long and unusual passphrase"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The attacks below sign in and ask for links more often than the auth limits allow;
    # the tests of the limits themselves use `limited` instead.
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


@pytest.fixture
async def attacker(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container, client_ip="198.51.100.66") as client:
        yield client


@pytest.fixture
async def victim(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container, client_ip="203.0.113.10") as client:
        yield client


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/sign-in", json={"email": email, "password": password})


async def _magic_link(client: httpx.AsyncClient, container: Container, email: str) -> str:
    await client.post("/api/auth/magic-link", json={"email": email})
    return await last_token(container, email, "sign-in link")


# --- item 2: account pre-hijacking -----------------------------------------------------------


async def test_an_attacker_who_signed_up_first_with_the_victims_address_is_locked_out_by_the_victims_magic_link(  # noqa: E501
    container: Container, attacker: httpx.AsyncClient, victim: httpx.AsyncClient
) -> None:
    signed_up = await attacker.post(
        "/api/auth/sign-up",
        json={"email": VICTIM, "password": ATTACKER_PASSWORD, "display_name": "Victim"},
    )
    assert signed_up.status_code == 201
    planted = (await _sign_in(attacker, VICTIM, ATTACKER_PASSWORD)).json()

    token = await _magic_link(victim, container, VICTIM)
    claimed = await victim.post("/api/auth/magic-link/verify", json={"token": token})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["user"]["email_verified"] is True

    # The attacker's session, its refresh token and its password are all gone.
    _problem(
        await attacker.get("/api/auth/session", headers=auth_headers(planted["access_token"])), 401
    )
    _problem(
        await attacker.post("/api/auth/refresh", json={"refresh_token": planted["refresh_token"]}),
        401,
    )
    _problem(await _sign_in(attacker, VICTIM, ATTACKER_PASSWORD), 401)
    # The victim's own session is the one left.
    me = await victim.get("/api/auth/session", headers=auth_headers(claimed.json()["access_token"]))
    assert me.status_code == 200
    sessions = await victim.get(
        "/api/auth/sessions", headers=auth_headers(claimed.json()["access_token"])
    )
    assert [s["method"] for s in sessions.json()["sessions"]] == ["magic_link"]
    async with container.db.connection() as conn:
        cur = await conn.execute(
            "SELECT data->>'reason' FROM lufy.events WHERE type = 'accounts.password_removed'"
        )
        assert await cur.fetchall() == [("set_before_verification",)]


async def test_a_magic_link_into_a_verified_account_keeps_its_password_and_other_sessions(
    container: Container, victim: httpx.AsyncClient
) -> None:
    await victim.post(
        "/api/auth/sign-up", json={"email": VICTIM, "password": PASSWORD, "display_name": "V"}
    )
    verify = await last_token(container, VICTIM, "Confirm")
    assert (await victim.post("/api/auth/verify-email", json={"token": verify})).status_code == 200
    laptop = (await _sign_in(victim, VICTIM, PASSWORD)).json()

    token = await _magic_link(victim, container, VICTIM)
    assert (await victim.post("/api/auth/magic-link/verify", json={"token": token})).is_success

    assert (
        await victim.get("/api/auth/session", headers=auth_headers(laptop["access_token"]))
    ).status_code == 200
    assert (await _sign_in(victim, VICTIM, PASSWORD)).status_code == 200


# --- item 10: e-mailed links die with the password ------------------------------------------


@pytest.mark.parametrize("how", ["change", "reset"])
async def test_a_link_mailed_before_a_password_change_cannot_be_used_after_it(
    container: Container, victim: httpx.AsyncClient, how: str
) -> None:
    await victim.post(
        "/api/auth/sign-up", json={"email": VICTIM, "password": PASSWORD, "display_name": "V"}
    )
    verification = await last_token(container, VICTIM, "Confirm")
    magic = await _magic_link(victim, container, VICTIM)
    await victim.post("/api/auth/password/forgot", json={"email": VICTIM})
    first_reset = await last_token(container, VICTIM, "Reset")
    new_password = "a brand new passphrase"

    if how == "change":
        pair = (await _sign_in(victim, VICTIM, PASSWORD)).json()
        changed = await victim.post(
            "/api/auth/password/change",
            json={"current_password": PASSWORD, "new_password": new_password},
            headers=auth_headers(pair["access_token"]),
        )
        leftovers = [first_reset]
    else:
        await victim.post("/api/auth/password/forgot", json={"email": VICTIM})
        second_reset = await last_token(container, VICTIM, "Reset")
        changed = await victim.post(
            "/api/auth/password/reset", json={"token": second_reset, "password": new_password}
        )
        leftovers = [first_reset]
    assert changed.status_code == 200, changed.text

    refused = [
        await victim.post("/api/auth/magic-link/verify", json={"token": magic}),
        await victim.post("/api/auth/verify-email", json={"token": verification}),
        *[
            await victim.post(
                "/api/auth/password/reset", json={"token": t, "password": "an attacker's pick"}
            )
            for t in leftovers
        ],
    ]
    for response in refused:
        assert "password changed" in _problem(response, 400)["detail"]
    assert (await _sign_in(victim, VICTIM, new_password)).status_code == 200
    # A link asked for after the change works.
    fresh = await _magic_link(victim, container, VICTIM)
    assert (await victim.post("/api/auth/magic-link/verify", json={"token": fresh})).is_success


# --- item 6: only plain addresses ------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "Eve<victim@gmail.com>",
        "Eve <victim@gmail.com>",
        "victim@gmail.com,eve@evil.example",
        "victim@gmail.com;eve@evil.example",
        "victim@gmail.com eve@evil.example",
        '"eve"@evil.example',
        "eve(comment)@evil.example",
        "eve@[127.0.0.1]",
        "eve..x@evil.example",
        ".eve@evil.example",
        "eve.@evil.example",
        "eve@-evil.example",
        "eve@evil-.example",
        "eve@evil..example",
        "eve@localhost",
        "ève@evil.example",
        "eve@évil.example",
        "eve\r\nBcc: all@evil.example",
        "x" * 65 + "@evil.example",
        "eve@" + "a" * 64 + ".example",
    ],
)
async def test_an_address_that_is_not_a_plain_rfc_5321_mailbox_is_refused_at_sign_up(
    container: Container, victim: httpx.AsyncClient, address: str
) -> None:
    response = await victim.post(
        "/api/auth/sign-up", json={"email": address, "password": PASSWORD, "display_name": "E"}
    )
    assert "not a valid e-mail address" in _problem(response, 422)["detail"]
    async with container.db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM lufy.events")
        assert await cur.fetchone() == (0,)


@pytest.mark.parametrize(
    "address",
    [
        "o'brien+lufy@sub.example.org",
        "a!#$%&'*+/=?^_`{|}~-z@example.com",
        "first.last@xn--bcher-kva.example",
        "x" * 64 + "@example.com",
        "Mixed.Case@Example.COM",
    ],
)
async def test_every_plain_address_rfc_5321_allows_can_sign_up(
    victim: httpx.AsyncClient, address: str
) -> None:
    response = await victim.post(
        "/api/auth/sign-up", json={"email": address, "password": PASSWORD, "display_name": "E"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["user"]["email"] == address.lower()
