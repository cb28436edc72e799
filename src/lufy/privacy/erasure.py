"""Erasure of a person (GDPR Art. 17) by crypto-shredding: `forget`.

1. accounts (one transaction): `accounts.user_erased`, the person's data key destroyed (every
   sealed field of theirs in the log opens as "[erased]" from then on, replays included), the
   password hash deleted, every session revoked, every e-mailed link retired, the users row
   left with placeholders;
2. catalog: every track of an artist unpublished and deleted (`catalog.track_unpublished`,
   `catalog.track_deleted`), its HLS package and source removed from storage.

Both steps are idempotent. Step 2 also runs as the `finish_erasure` job implied by
`accounts.user_erased` (the job ledger sees it through), so a process killed between the two
steps leaves no half-state for long; running `forget` again finishes it at once.
Aggregates stay: analytics count listeners by keyed hash.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from lufy.errors import NotFoundError
from lufy.identity import Principal
from lufy.sqlfiles import load_queries

__all__ = ["ErasureReport", "delete_tracks", "forget"]

_NIL = uuid.UUID(int=0)
_Q = load_queries("lufy.privacy", "erasure.sql")


class ErasureReport(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    # False when the person had already been erased (this run only finished leftovers).
    erased_now: bool
    tracks_deleted: int


async def forget(container: Any, user_id: uuid.UUID, *, via: str) -> ErasureReport:
    erased_now = await container.accounts.erase(user_id, via=via)
    deleted = await delete_tracks(container, user_id)
    return ErasureReport(user_id=user_id, erased_now=erased_now, tracks_deleted=deleted)


async def delete_tracks(container: Any, artist_id: uuid.UUID) -> int:

    async with container.db.transaction(role="system") as conn:
        cur = await conn.execute(_Q.live_tracks, [artist_id])
        tracks = await cur.fetchall()
    if not tracks:
        return 0
    catalog = container.catalog
    # The erasure acts with an operator's rights, in the name of the person erased.
    principal = Principal(user_id=artist_id, role="admin", session_id=_NIL)
    deleted = 0
    for track_id, published in tracks:
        try:
            if published:
                await catalog.unpublish(principal, track_id)
            await catalog.delete(principal, track_id)
            deleted += 1
        except NotFoundError:
            continue  # deleted meanwhile
    return deleted
