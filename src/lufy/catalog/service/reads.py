"""Reading the catalogue: tracks as the caller may see them (Row-Level Security decides; an
anonymous caller sees published tracks only)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from lufy.catalog.schemas import Track
from lufy.catalog.service.base import CatalogBase
from lufy.errors import NotFoundError
from lufy.identity import Principal
from lufy.sqlfiles import load_queries

__all__ = ["TrackReads"]

_Q = load_queries("lufy.catalog")


def _track(row: Sequence[Any]) -> Track:
    return Track(
        id=row[0],
        artist_id=row[1],
        title=row[2],
        status=row[3],
        failure_reason=row[4],
        duration_ms=row[5],
        published=row[6],
        created_at=row[7],
    )


class TrackReads(CatalogBase):
    async def list_tracks(
        self,
        principal: Principal | None,
        *,
        artist_id: uuid.UUID | None = None,
        status: str | None = None,
        published_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Track]:
        user_id, role = (principal.user_id, principal.role) if principal else (None, None)
        async with self.db.transaction(user_id=user_id, role=role) as conn:
            cur = await conn.execute(
                _Q.list_tracks,
                {
                    "artist_id": artist_id,
                    "status": status,
                    "published_only": published_only,
                    "limit": limit,
                    "offset": offset,
                },
            )
            return [_track(r) for r in await cur.fetchall()]

    async def get_track(self, principal: Principal | None, track_id: uuid.UUID) -> Track:
        user_id, role = (principal.user_id, principal.role) if principal else (None, None)
        async with self.db.transaction(user_id=user_id, role=role) as conn:
            cur = await conn.execute(_Q.get_track, {"id": track_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFoundError("no such track")
        return _track(row)
