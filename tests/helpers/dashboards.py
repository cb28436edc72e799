"""Dashboard numbers of several artists at once, as an admin sees them (privacy tests compare
them before and after an erasure, a retention run or a rebuild)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from lufy.bootstrap import Container
from tests.helpers.http import api_client


async def artist_dashboards(
    container: Container,
    admin_headers: dict[str, str],
    artists: Iterable[uuid.UUID],
    *,
    range_: str = "7d",
) -> list[Any]:
    """Each artist's overview and tracks for `range_`, in order."""
    out = []
    async with api_client(container) as client:
        for artist in artists:
            for path in ("overview", "tracks"):
                response = await client.get(
                    f"/api/dashboard/{path}",
                    params={"artist_id": str(artist), "range": range_},
                    headers=admin_headers,
                )
                assert response.status_code == 200, response.text
                out.append(response.json())
    return out
