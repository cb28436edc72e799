from __future__ import annotations

from tests.helpers.accounts import create_user
from tests.helpers.http import api_client


async def test_a_helper_user_reads_their_own_session_over_http(container) -> None:
    artist = await create_user(container, role="artist")
    async with api_client(container) as client:
        response = await client.get("/api/auth/session", headers=artist.headers)
        anonymous = await client.get("/api/auth/session")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["id"] == str(artist.id)
    assert body["user"]["role"] == "artist"
    assert body["session"]["id"] == str(artist.session_id)
    assert anonymous.status_code == 401


async def test_the_rate_limiter_sees_the_principal_set_by_the_auth_middleware(
    container,
) -> None:
    user = await create_user(container)
    async with api_client(container) as client:
        signed_in = await client.get("/api/auth/session", headers=user.headers)
        guest = await client.get("/api/auth/session")
        bad_token = await client.get(
            "/api/auth/session", headers={"Authorization": "Bearer nonsense"}
        )
    assert signed_in.headers["RateLimit-Policy"].startswith('"user"')
    assert guest.headers["RateLimit-Policy"].startswith('"guest"')
    # A refused token is a guest to the limiter: guessing tokens is counted per IP.
    assert bad_token.headers["RateLimit-Policy"].startswith('"guest"')
