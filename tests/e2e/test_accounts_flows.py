"""Every /api/auth flow end to end over HTTP, reading e-mails from the file backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from lufy.bootstrap import Container
from lufy.settings import Settings
from tests.helpers.accounts import (
    auth_headers,
    create_user,
    deliver_account_emails,
    inbox,
    last_token,
)
from tests.helpers.http import api_client

PASSWORD = "a long and unusual passphrase"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # These tests sign in far more often than the auth rate limits allow (tested elsewhere).
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container, client_ip="203.0.113.77") as c:
        yield c


async def sign_up(client: httpx.AsyncClient, email: str, **extra: Any) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, "display_name": "Ada", "role": "listener"}
    return await client.post("/api/auth/sign-up", json={**body, **extra})


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, ua: str = FIREFOX
) -> httpx.Response:
    return await client.post(
        "/api/auth/sign-in",
        json={"email": email, "password": password},
        headers={"User-Agent": ua},
    )


async def count_events(container: Container, type_: str) -> int:
    async with container.db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM lufy.events WHERE type = %s", [type_])
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


# --- sign-up and verification --------------------------------------------------------------


async def test_sign_up_returns_the_unverified_user_and_emails_a_verification_link(
    client: httpx.AsyncClient, container: Container
) -> None:
    response = await sign_up(client, "Ada@Example.COM", role="artist")
    assert response.status_code == 201, response.text
    user = response.json()["user"]
    assert set(user) == {"id", "email", "display_name", "role", "email_verified"}
    assert user["email"] == "ada@example.com"
    assert user["role"] == "artist"
    assert user["email_verified"] is False

    await deliver_account_emails(container)
    [message] = inbox(container, "ada@example.com")
    assert set(message) == {"to", "subject", "text", "html", "sent_at"}
    assert "http://testserver.local/verify-email?token=" in message["text"]
    assert "http://testserver.local/verify-email?token=" in message["html"]

    token = await last_token(container, "ada@example.com", "Confirm")
    verified = await client.post("/api/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"]["email_verified"] is True

    signed_in = await sign_in(client, "ada@example.com")
    assert signed_in.json()["user"]["email_verified"] is True


async def test_a_verification_link_works_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "once@example.com")
    token = await last_token(container, "once@example.com", "Confirm")
    assert (await client.post("/api/auth/verify-email", json={"token": token})).status_code == 200
    again = await client.post("/api/auth/verify-email", json={"token": token})
    assert "already been used" in problem(again, 400)["detail"]


async def test_a_verification_link_expires_after_24_hours(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "late@example.com")
    token = await last_token(container, "late@example.com", "Confirm")
    container.accounts.clock = lambda: datetime.now(UTC) + timedelta(hours=24, seconds=1)
    response = await client.post("/api/auth/verify-email", json={"token": token})
    assert "expired" in problem(response, 400)["detail"]


async def test_a_second_sign_up_with_the_same_address_is_a_conflict_and_writes_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    assert (await sign_up(client, "twice@example.com")).status_code == 201
    again = await sign_up(client, "  TWICE@example.com ")
    assert "already exists" in problem(again, 409)["detail"]
    assert await count_events(container, "accounts.user_registered") == 1
    assert await count_events(container, "accounts.email_verification_requested") == 1


async def test_signing_up_as_admin_is_refused(client: httpx.AsyncClient) -> None:
    response = await sign_up(client, "boss@example.com", role="admin")
    problem(response, 400)


# --- sign-in, session, refresh -------------------------------------------------------------


async def test_sign_in_returns_a_bearer_pair_that_opens_the_session(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "in@example.com")
    response = await sign_in(client, "in@example.com")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert set(claims) == {"sub", "sid", "role", "iat", "exp", "iss", "aud"}
    assert claims["exp"] - claims["iat"] == 900
    assert claims["sub"] == body["user"]["id"]
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"

    session = await client.get("/api/auth/session", headers=auth_headers(body["access_token"]))
    assert session.status_code == 200, session.text
    assert session.json()["user"]["email"] == "in@example.com"
    assert session.json()["session"]["id"] == claims["sid"]
    assert session.json()["session"]["current"] is True
    assert await count_events(container, "accounts.signed_in") == 1


async def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "known@example.com")
    wrong = await sign_in(client, "known@example.com", "not the password at all")
    unknown = await sign_in(client, "nobody@example.com", "not the password at all")
    assert problem(wrong, 401) == problem(unknown, 401)
    assert await count_events(container, "accounts.sign_in_failed") == 2
    assert await count_events(container, "accounts.signed_in") == 0


async def test_a_refresh_rotates_the_pair_and_the_old_refresh_token_dies(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "rot@example.com")
    first = (await sign_in(client, "rot@example.com")).json()
    second = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert pair["user"]["email"] == "rot@example.com"
    same_session = jwt.decode(pair["access_token"], options={"verify_signature": False})["sid"]
    assert (
        same_session
        == jwt.decode(first["access_token"], options={"verify_signature": False})["sid"]
    )
    third = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert third.status_code == 200


async def test_a_reused_refresh_token_revokes_the_whole_session(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "reuse@example.com")
    stolen = (await sign_in(client, "reuse@example.com")).json()
    rotated = (
        await client.post("/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    ).json()

    replay = await client.post("/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert "revoked" in problem(replay, 401)["detail"]
    # The legitimate holder's newer tokens die with the session.
    after = await client.post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    problem(after, 401)
    me = await client.get("/api/auth/session", headers=auth_headers(rotated["access_token"]))
    assert "revoked" in problem(me, 401)["detail"]
    assert await count_events(container, "accounts.refresh_token_reused") == 1
    assert await count_events(container, "accounts.session_revoked") == 1


async def test_an_unknown_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/refresh", json={"refresh_token": "made-up"})
    problem(response, 401)


async def test_a_refresh_token_expires_after_30_days(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "old@example.com")
    pair = (await sign_in(client, "old@example.com")).json()
    container.accounts.clock = lambda: datetime.now(UTC) + timedelta(days=30, seconds=1)
    response = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert "expired" in problem(response, 401)["detail"]


async def test_sign_out_ends_the_session_for_access_and_refresh_tokens(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "out@example.com")
    pair = (await sign_in(client, "out@example.com")).json()
    headers = auth_headers(pair["access_token"])
    assert (await client.post("/api/auth/sign-out", headers=headers)).status_code == 204
    problem(await client.get("/api/auth/session", headers=headers), 401)
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    problem(refreshed, 401)
    problem(await client.post("/api/auth/sign-out", headers=headers), 401)


# --- sessions ------------------------------------------------------------------------------


async def test_sessions_list_device_ip_prefix_and_last_seen_and_can_be_revoked(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "multi@example.com")
    laptop = (await sign_in(client, "multi@example.com", ua=FIREFOX)).json()
    phone = (await sign_in(client, "multi@example.com", ua=IPHONE)).json()
    headers = auth_headers(laptop["access_token"])

    listed = (await client.get("/api/auth/sessions", headers=headers)).json()["sessions"]
    assert len(listed) == 2
    by_current = {s["current"]: s for s in listed}
    assert by_current[True]["device"] == "Firefox 128 on Linux"
    assert by_current[False]["device"].startswith("Mobile Safari")
    assert all(s["ip_prefix"] == "203.0.113.0/24" for s in listed)
    assert "203.0.113.77" not in str(listed)
    assert all(s["last_seen_at"] and s["created_at"] for s in listed)

    phone_id = by_current[False]["id"]
    revoked = await client.delete(f"/api/auth/sessions/{phone_id}", headers=headers)
    assert revoked.status_code == 204, revoked.text
    problem(await client.get("/api/auth/session", headers=auth_headers(phone["access_token"])), 401)
    listed = (await client.get("/api/auth/sessions", headers=headers)).json()["sessions"]
    assert [s["id"] for s in listed] == [by_current[True]["id"]]


async def test_revoking_all_other_sessions_keeps_the_current_one(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "others@example.com")
    pairs = [(await sign_in(client, "others@example.com")).json() for _ in range(3)]
    keep = auth_headers(pairs[0]["access_token"])
    response = await client.post("/api/auth/sessions/revoke-others", headers=keep)
    assert response.status_code == 200, response.text
    assert response.json() == {"revoked": 2}
    assert (await client.get("/api/auth/session", headers=keep)).status_code == 200
    for pair in pairs[1:]:
        gone = await client.get("/api/auth/session", headers=auth_headers(pair["access_token"]))
        problem(gone, 401)


async def test_revoking_an_unknown_session_is_not_found(client: httpx.AsyncClient) -> None:
    await sign_up(client, "nf@example.com")
    pair = (await sign_in(client, "nf@example.com")).json()
    response = await client.delete(
        "/api/auth/sessions/00000000-0000-0000-0000-000000000001",
        headers=auth_headers(pair["access_token"]),
    )
    problem(response, 404)


# --- magic link ----------------------------------------------------------------------------


async def test_magic_link_answers_the_same_for_known_and_unknown_addresses(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "magic@example.com")
    known = await client.post("/api/auth/magic-link", json={"email": "magic@example.com"})
    unknown = await client.post("/api/auth/magic-link", json={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    await deliver_account_emails(container)
    assert inbox(container, "ghost@example.com") == []
    assert len([m for m in inbox(container, "magic@example.com") if "sign-in" in m["subject"]]) == 1


async def test_a_magic_link_signs_in_once_and_verifies_the_address(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "ml@example.com")
    await client.post("/api/auth/magic-link", json={"email": "ml@example.com"})
    token = await last_token(container, "ml@example.com", "sign-in link")
    assert (
        "http://testserver.local/magic-link?token="
        in inbox(container, "ml@example.com")[-1]["text"]
    )

    response = await client.post(
        "/api/auth/magic-link/verify", json={"token": token}, headers={"User-Agent": IPHONE}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["user"]["email_verified"] is True
    session = await client.get("/api/auth/session", headers=auth_headers(body["access_token"]))
    assert session.json()["session"]["method"] == "magic_link"

    again = await client.post("/api/auth/magic-link/verify", json={"token": token})
    assert "already been used" in problem(again, 400)["detail"]


async def test_a_magic_link_expires_after_10_minutes(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "slow@example.com")
    await client.post("/api/auth/magic-link", json={"email": "slow@example.com"})
    token = await last_token(container, "slow@example.com", "sign-in link")
    container.accounts.clock = lambda: datetime.now(UTC) + timedelta(minutes=10, seconds=1)
    response = await client.post("/api/auth/magic-link/verify", json={"token": token})
    assert "expired" in problem(response, 400)["detail"]


async def test_a_verification_token_is_not_a_magic_link(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "mixed@example.com")
    token = await last_token(container, "mixed@example.com", "Confirm")
    response = await client.post("/api/auth/magic-link/verify", json={"token": token})
    problem(response, 400)


# --- passwords -----------------------------------------------------------------------------


async def test_forgot_password_answers_the_same_for_known_and_unknown_addresses(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "forgot@example.com")
    known = await client.post("/api/auth/password/forgot", json={"email": "forgot@example.com"})
    unknown = await client.post("/api/auth/password/forgot", json={"email": "nope@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert await count_events(container, "accounts.password_reset_requested") == 1
    await deliver_account_emails(container)
    assert inbox(container, "nope@example.com") == []


async def test_a_password_reset_sets_the_password_once_and_signs_out_everywhere(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "reset@example.com")
    before = (await sign_in(client, "reset@example.com")).json()
    await client.post("/api/auth/password/forgot", json={"email": "reset@example.com"})
    token = await last_token(container, "reset@example.com", "Reset")
    assert (
        "http://testserver.local/reset-password?token="
        in inbox(container, "reset@example.com")[-1]["text"]
    )

    new_password = "an entirely new passphrase"
    response = await client.post(
        "/api/auth/password/reset", json={"token": token, "password": new_password}
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email"] == "reset@example.com"

    problem(await sign_in(client, "reset@example.com", PASSWORD), 401)
    assert (await sign_in(client, "reset@example.com", new_password)).status_code == 200
    old = await client.get("/api/auth/session", headers=auth_headers(before["access_token"]))
    problem(old, 401)
    again = await client.post(
        "/api/auth/password/reset", json={"token": token, "password": "yet another passphrase"}
    )
    problem(again, 400)
    await deliver_account_emails(container)
    assert any("was changed" in m["subject"] for m in inbox(container, "reset@example.com"))


async def test_a_reset_link_expires_after_an_hour(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "hour@example.com")
    await client.post("/api/auth/password/forgot", json={"email": "hour@example.com"})
    token = await last_token(container, "hour@example.com", "Reset")
    container.accounts.clock = lambda: datetime.now(UTC) + timedelta(hours=1, seconds=1)
    response = await client.post(
        "/api/auth/password/reset", json={"token": token, "password": "a fresh passphrase"}
    )
    assert "expired" in problem(response, 400)["detail"]


async def test_a_weak_new_password_does_not_consume_the_reset_link(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "weak@example.com")
    await client.post("/api/auth/password/forgot", json={"email": "weak@example.com"})
    token = await last_token(container, "weak@example.com", "Reset")
    weak = await client.post(
        "/api/auth/password/reset", json={"token": token, "password": "password123"}
    )
    problem(weak, 422)
    good = await client.post(
        "/api/auth/password/reset", json={"token": token, "password": "a fresh passphrase"}
    )
    assert good.status_code == 200


async def test_changing_the_password_revokes_the_other_sessions_only(
    client: httpx.AsyncClient, container: Container
) -> None:
    await sign_up(client, "change@example.com")
    current = (await sign_in(client, "change@example.com")).json()
    other = (await sign_in(client, "change@example.com", ua=IPHONE)).json()
    headers = auth_headers(current["access_token"])

    wrong = await client.post(
        "/api/auth/password/change",
        json={"current_password": "not it at all", "new_password": "a better passphrase"},
        headers=headers,
    )
    problem(wrong, 401)
    response = await client.post(
        "/api/auth/password/change",
        json={"current_password": PASSWORD, "new_password": "a better passphrase"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"revoked": 1}
    assert (await client.get("/api/auth/session", headers=headers)).status_code == 200
    problem(await client.get("/api/auth/session", headers=auth_headers(other["access_token"])), 401)
    assert (await sign_in(client, "change@example.com", "a better passphrase")).status_code == 200
    assert await count_events(container, "accounts.password_changed") == 1


async def test_resend_verification_mails_a_new_link_to_an_unverified_user(
    client: httpx.AsyncClient, container: Container
) -> None:
    user = await create_user(container, email="again@example.com", verified=False)
    response = await client.post("/api/auth/verify-email/resend", headers=user.headers)
    assert response.status_code == 202
    token = await last_token(container, "again@example.com", "Confirm")
    verified = await client.post("/api/auth/verify-email", json={"token": token})
    assert verified.json()["user"]["email_verified"] is True
