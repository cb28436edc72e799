"""What an operator (and the API) asks of the projections: status, skip, read-your-writes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from psycopg import AsyncConnection

from lufy.errors import LufyError, NotFoundError
from lufy.eventstore.envelope import ANY, Checkpoint, EventMetadata, NewEvent
from lufy.eventstore.postgres import EventStore
from lufy.identity import event_metadata
from lufy.operations.events import ProjectionEventSkipped
from lufy.projections.base import Projection
from lufy.projections.context import LIVE_PATH, NS_LIVE, Q, checkpoint_of, enter_system_transaction
from lufy.projections.discovery import all_projections

__all__ = ["ProjectionStatus", "SkipRefusedError", "skip_event", "status", "wait_for_projection"]

# Counting events behind is capped: a reader far behind costs a bounded scan.
LAG_CAP = 1_000_000


class SkipRefusedError(LufyError):
    status = 409
    title = "Skip refused"


class ProjectionStatus(msgspec.Struct, kw_only=True):
    name: str
    kind: str
    version: int
    state: str
    position: int | None
    lag_events: int
    lag_seconds: float
    owner: str | None
    failed_position: int | None = None
    error: str | None = None
    idle_seconds: float | None = None


async def status(
    conn: AsyncConnection[Any], *, store: EventStore | None = None
) -> tuple[list[ProjectionStatus], dict[str, Any] | None]:
    """Every projection (also those no projector has started yet) and what holds the read
    barrier back (if any); `store`: the container's, or one of its own."""
    cur = await conn.execute(Q.status, {"cap": LAG_CAP, "ns": NS_LIVE})
    rows = await cur.fetchall()
    out = [
        ProjectionStatus(
            name=r[0],
            kind=r[1],
            version=int(r[2]),
            state=r[3],
            position=None if r[4] is None else int(r[4]),
            lag_events=int(r[5] or 0) if r[4] is not None else 0,
            lag_seconds=round(float(r[6] or 0.0), 3) if r[4] is not None else 0.0,
            owner=r[7],
            failed_position=r[9],
            error=r[10],
            idle_seconds=None if r[11] is None else round(float(r[11]), 1),
        )
        for r in rows
    ]
    out.extend(await _not_started(conn, {s.name for s in out}))
    holder = await (store or EventStore()).barrier_holder(conn)
    return out, holder


async def _not_started(conn: AsyncConnection[Any], seen: set[str]) -> list[ProjectionStatus]:
    """Projections this code defines that no projector has run against this database yet."""
    # cheap CLI start: `lufy --help` imports this module (lufy.projections), not the projector
    from lufy.projections.runner import kind_of

    out = []
    for p in sorted(all_projections(), key=lambda p: p.name):
        if p.name in seen:
            continue
        lag = 0
        if not p.inline:
            cur = await conn.execute(Q.lag_of_unstarted, {"name": p.name, "cap": LAG_CAP})
            row = await cur.fetchone()
            lag = int(row[0]) if row else 0
        out.append(
            ProjectionStatus(
                name=p.name,
                kind=kind_of(p),
                version=p.version,
                state="not started",
                position=None,
                lag_events=lag,
                lag_seconds=0.0,
                owner=None,
            )
        )
    return out


async def wait_for_projection(
    conn: AsyncConnection[Any],
    name: str,
    position: int,
    timeout: float = 2.0,  # noqa: ASYNC109 - a bound on polling, not a cancellation scope
) -> bool:
    """Read-your-writes: wait (bounded) until projection `name` has applied the event at
    `position` (a global position from an append). True when it has; False on timeout, so the
    caller can answer with what it has (e.g. 202 and a Location to poll)."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        cur = await conn.execute(Q.has_passed, {"name": name, "pos": position}, prepare=True)
        row = await cur.fetchone()
        if row is not None and row[0]:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.1)


async def skip_event(
    conn: AsyncConnection[Any],
    projection: Projection,
    position: int,
    *,
    reason: str = "",
    actor_id: str | None = None,
    store: EventStore | None = None,
) -> Checkpoint:
    """Move `projection` past the event at `position`, recorded as an operator event.

    Allowed only for the event it is stopped at (state failed) or, when running, the next event
    it would apply: an operator never skips blindly over events they have not seen.
    """
    store = store or EventStore()
    name = projection.name
    async with conn.transaction():
        await enter_system_transaction(conn, LIVE_PATH)
        target, causation_id = await _skippable(conn, store, projection, position)
        await conn.execute(
            Q.set_checkpoint,
            {"name": name, "tx": target.transaction_id, "pos": target.global_position},
        )
        await conn.execute(Q.mark_running, {"name": name})
        await store.append(
            conn,
            "operations",
            name,
            [
                NewEvent(
                    event=ProjectionEventSkipped(
                        projection=name, global_position=position, reason=reason
                    ),
                    metadata=EventMetadata(**event_metadata(actor_id, causation_id=causation_id)),
                )
            ],
            expected=ANY,
        )
    return target


async def _skippable(
    conn: AsyncConnection[Any], store: EventStore, projection: Projection, position: int
) -> tuple[Checkpoint, str]:
    """In the skip's transaction: lock the checkpoint and check that the event at `position` is
    the one to skip; returns its place in the log and its id (or raises why not)."""
    name = projection.name
    cur = await conn.execute(Q.lock_checkpoint, {"name": name})
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"projection {name} has no checkpoint (has the projector run?)")
    current = checkpoint_of(row)
    cur = await conn.execute(Q.event_at, {"pos": position})
    event = await cur.fetchone()
    if event is None:
        raise NotFoundError(f"no event at position {position}")
    target = Checkpoint(int(event[0]), int(event[1]))
    if target <= current:
        raise SkipRefusedError(f"{name} is already past position {position}")
    if event[3] not in projection.handles:
        raise SkipRefusedError(f"{name} does not handle {event[3]} (position {position})")
    cur = await conn.execute(Q.get_state, {"name": name})
    state = await cur.fetchone()
    failed_at = state[2] if state and state[1] == "failed" else None
    if failed_at is not None and int(failed_at) != position:
        raise SkipRefusedError(f"{name} is stopped at position {failed_at}, not {position}")
    if failed_at is None:
        page = await store.read_all(conn, current, limit=1, types=sorted(projection.handles))
        nxt = page.events[0].global_position if page.events else None
        if nxt != position:
            raise SkipRefusedError(
                f"{name} would apply position {nxt} next, not {position}; "
                "only the failing or next event can be skipped"
            )
    return target, str(event[2])
