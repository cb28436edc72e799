"""What a projector task does when it takes the lead of a projection, before applying anything.

It makes sure the projection's state row (and, for an async one, its checkpoint) exists, claims
it for this process, and rebuilds the projection when its version differs from the live one.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from lufy.eventstore.envelope import Checkpoint
from lufy.eventstore.postgres import EventStore
from lufy.logs import get_logger
from lufy.projections.base import Projection
from lufy.projections.context import Q, process_label
from lufy.projections.reactors import Reactor
from lufy.projections.rebuild import rebuild

__all__ = ["kind_of", "take_over"]

_log = get_logger(__name__)


def kind_of(projection: Projection) -> str:
    if isinstance(projection, Reactor):
        return "reactor"
    return "inline" if projection.inline else "async"


async def _claim(conn: AsyncConnection[Any], p: Projection, store: EventStore) -> tuple[int, str]:
    """Create the state row and checkpoint if new, claim them; (live version, state)."""
    async with conn.transaction():
        await conn.execute(
            Q.ensure_state, {"name": p.name, "version": p.version, "kind": kind_of(p)}
        )
        if not p.inline:
            start = Checkpoint.START
            if getattr(p, "start_at_head", False):
                start = await store.barrier(conn)
            await conn.execute(
                Q.ensure_checkpoint,
                {"name": p.name, "tx": start.transaction_id, "pos": start.global_position},
            )
        await conn.execute(
            Q.claim_state,
            {"name": p.name, "owner": process_label("projector"), "kind": kind_of(p)},
        )
        cur = await conn.execute(Q.get_state, {"name": p.name})
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


async def take_over(
    url: str,
    conn: AsyncConnection[Any],
    p: Projection,
    store: EventStore,
    *,
    rebuild_batch_size: int | None,
) -> bool:
    """Claim `p` on `conn` (autocommit, holding its leadership lock), rebuild it on a version
    change; returns whether it is stopped at a failing event."""
    live_version, state = await _claim(conn, p, store)
    if live_version == p.version:
        return state == "failed"
    if p.tables:
        _log.warning(
            "projection version changed: rebuilding",
            projection=p.name,
            live_version=live_version,
            version=p.version,
        )
        await rebuild(url, p, store=store, batch_size=rebuild_batch_size)
    else:
        await conn.execute(Q.set_version, {"name": p.name, "version": p.version})
    return False
