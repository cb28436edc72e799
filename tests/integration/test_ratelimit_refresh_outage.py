"""With Redis down, a refresh (it presents a credential) fails closed like sign-in."""

from __future__ import annotations

from lufy.bootstrap import bootstrap
from lufy.settings import Settings
from tests.helpers.http import api_client


async def test_refresh_fails_closed_with_503_when_redis_is_down(settings: Settings) -> None:
    down = settings.model_copy(update={"REDIS_URL": "redis://127.0.0.1:1/0"})
    container = bootstrap(down)
    await container.start()
    try:
        async with api_client(container) as client:
            response = await client.post("/api/auth/refresh", json={"refresh_token": "x" * 40})
            session = await client.get("/api/auth/session")
    finally:
        await container.stop()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Retry-After" in response.headers
    # An ordinary route fails open: it is answered by the route itself (401 without a token).
    assert session.status_code == 401
