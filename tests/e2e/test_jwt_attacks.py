"""Access-token attacks over HTTP: every forged, confused, stale or tampered token is a 401."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from lufy.bootstrap import Container
from lufy.settings import Settings
from tests.helpers.accounts import TestUser, auth_headers, create_user
from tests.helpers.http import api_client


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container) as c:
        yield c


@pytest.fixture
async def user(container: Container) -> TestUser:
    return await create_user(container, role="listener")


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


async def refused(client: httpx.AsyncClient, token: str) -> str:
    response = await client.get("/api/auth/session", headers=auth_headers(token))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail: str = response.json()["detail"]
    return detail


async def test_the_genuine_token_is_accepted(client: httpx.AsyncClient, user: TestUser) -> None:
    response = await client.get("/api/auth/session", headers=user.headers)
    assert response.status_code == 200


async def test_alg_none_is_refused(client: httpx.AsyncClient, user: TestUser) -> None:
    claims = claims_of(user.access_token)
    for alg in ("none", "None", "NONE"):
        unsigned = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}."
        assert "algorithm" in await refused(client, unsigned)


async def test_a_none_header_with_the_original_signature_is_refused(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    _, payload, signature = user.access_token.split(".")
    confused = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}"
    await refused(client, confused)


async def test_another_hmac_algorithm_with_the_right_key_is_refused(
    client: httpx.AsyncClient, user: TestUser, settings: Settings
) -> None:
    claims = claims_of(user.access_token)
    hs512 = jwt.encode(claims, settings.jwt_secret, algorithm="HS512")
    assert "algorithm" in await refused(client, hs512)


async def test_an_rs256_header_over_an_hmac_signature_is_refused(
    client: httpx.AsyncClient, user: TestUser, settings: Settings
) -> None:
    _header, payload, signature = user.access_token.split(".")
    relabelled = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{signature}"
    await refused(client, relabelled)


async def test_a_token_signed_with_another_key_is_refused(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    forged = jwt.encode(claims_of(user.access_token), "not-the-key" * 4, algorithm="HS256")
    assert "signature" in await refused(client, forged)


async def test_a_tampered_payload_is_refused(client: httpx.AsyncClient, user: TestUser) -> None:
    header, _, signature = user.access_token.split(".")
    escalated = {**claims_of(user.access_token), "role": "admin"}
    assert "signature" in await refused(client, f"{header}.{b64(escalated)}.{signature}")


async def test_a_flipped_signature_byte_is_refused(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = user.access_token
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    await refused(client, flipped)


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"aud": "someone-else"}, "not meant for this API"),
        ({"iss": "https://evil.example"}, "issued by someone else"),
        ({"exp": int(time.time()) - 1}, "expired"),
        ({"role": "superuser"}, "claims are invalid"),
        ({"sub": "not-a-uuid"}, "claims are invalid"),
    ],
)
async def test_well_signed_tokens_with_wrong_claims_are_refused(
    client: httpx.AsyncClient,
    user: TestUser,
    settings: Settings,
    change: dict[str, Any],
    mentions: str,
) -> None:
    token = jwt.encode({**claims_of(user.access_token), **change}, settings.jwt_secret, "HS256")
    assert mentions in await refused(client, token)


@pytest.mark.parametrize("missing", ["exp", "iss", "aud", "sub", "sid", "role", "iat"])
async def test_a_token_missing_a_required_claim_is_refused(
    client: httpx.AsyncClient, user: TestUser, settings: Settings, missing: str
) -> None:
    claims = {k: v for k, v in claims_of(user.access_token).items() if k != missing}
    token = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    await refused(client, token)


async def test_a_media_stream_token_is_not_an_access_token(
    client: httpx.AsyncClient, user: TestUser, settings: Settings
) -> None:
    # Stream tokens share the key (CONTRACT: {sub, sid (track id), exp}) but have no audience.
    stream = jwt.encode(
        {"sub": str(user.id), "sid": str(user.session_id), "exp": int(time.time()) + 60},
        settings.jwt_secret,
        algorithm="HS256",
    )
    await refused(client, stream)


async def test_a_token_for_a_session_that_never_existed_is_refused(
    client: httpx.AsyncClient, user: TestUser, settings: Settings
) -> None:
    claims = {**claims_of(user.access_token), "sid": "00000000-0000-0000-0000-00000000abcd"}
    token = jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
    assert "revoked" in await refused(client, token)


async def test_another_users_session_id_in_a_signed_token_is_refused(
    client: httpx.AsyncClient, user: TestUser, container: Container, settings: Settings
) -> None:
    other = await create_user(container)
    claims = {**claims_of(user.access_token), "sid": str(other.session_id)}
    await refused(client, jwt.encode(claims, settings.jwt_secret, algorithm="HS256"))


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer a.b.c", "Bearer " + "x" * 5000, "Bearer \u00e9t\u00e9"],
)
async def test_garbage_bearer_values_are_401s_not_500s(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get(
        "/api/auth/session", headers=[(b"Authorization", header.encode("utf-8"))]
    )
    assert response.status_code == 401


async def test_a_bad_token_on_a_public_route_is_treated_as_a_guest(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/auth/password/forgot",
        json={"email": "guest@example.com"},
        headers=auth_headers("garbage"),
    )
    assert response.status_code == 202


async def test_when_the_database_is_down_a_bearer_request_is_a_503_not_a_500(
    settings: Settings,
) -> None:
    import uuid
    from datetime import UTC, datetime

    from lufy.bootstrap import bootstrap
    from lufy.web.auth import Principal

    down = settings.model_copy(
        update={"DATABASE_URL": "postgresql://lufy_app:lufy_app@127.0.0.1:1/nowhere"}
    )
    container = bootstrap(down)
    await container.start()
    try:
        who = Principal(user_id=uuid.uuid4(), role="listener", session_id=uuid.uuid4())
        token = container.accounts.access_tokens.issue(who, now=datetime.now(UTC))
        async with api_client(container) as client:
            response = await client.get("/api/auth/session", headers=auth_headers(token))
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    finally:
        await container.stop()
