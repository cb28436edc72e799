"""An unknown /api path is a 404 problem that still carries request ids and rate-limit headers."""

from __future__ import annotations

from lufy.bootstrap import Container
from tests.helpers.http import api_client


async def test_an_unknown_api_path_is_a_counted_404_problem(container: Container) -> None:
    async with api_client(container) as client:
        response = await client.get("/api/nonexistent/thing")
        known = await client.get("/api/rate-limit/status")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "no API route at /api/nonexistent/thing"
    assert "x-request-id" in response.headers
    assert "RateLimit" in response.headers
    assert "RateLimit-Policy" in response.headers
    assert known.status_code == 200
