"""Values PostgreSQL cannot store are a 400 problem, never a 500, and write nothing."""

from __future__ import annotations

from lufy.bootstrap import Container
from tests.helpers.accounts import create_user
from tests.helpers.http import api_client


async def test_a_nul_character_in_a_track_title_is_a_400_problem_and_changes_nothing(
    container: Container,
) -> None:
    artist = await create_user(container, role="artist")
    async with api_client(container) as client:
        created = await client.post(
            "/api/music/uploads",
            headers=artist.headers,
            json={
                "filename": "a.mp3",
                "content_type": "audio/mpeg",
                "size_bytes": 1000,
                "title": "Fine title",
            },
        )
        assert created.status_code == 201, created.text
        track_id = created.json()["track_id"]
        response = await client.patch(
            f"/api/music/tracks/{track_id}", headers=artist.headers, json={"title": "bad\u0000"}
        )
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 400
        track = await client.get(f"/api/music/tracks/{track_id}", headers=artist.headers)
        assert track.json()["title"] == "Fine title"


async def test_a_nul_character_in_a_sign_in_email_is_a_4xx_problem(container: Container) -> None:
    async with api_client(container) as client:
        response = await client.post(
            "/api/auth/sign-in", json={"email": "a\u0000@example.com", "password": "whatever1"}
        )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
