"""Stream grants: the database work of `GET /api/music/tracks/{id}/stream`, in one statement.

Every play starts with this request, so its cost is part of the time to first segment
(docs/benchmarks.md). `lufy.try_stream_grant` (sql/0981) binds the caller for Row-Level
Security, reads the track, decides whether it may be streamed and, when it may, appends the
`catalog.stream_authorized` event (encoded by the event store's codec like any append) with one
INSERT at the stream's next version, and reads what the listener's tier is worked out of: one
statement, in autocommit mode, so one round trip (Bind, Execute, Sync) whose answer arrives
committed. When another grant of the same track took that version meanwhile, the INSERT fails
having written nothing, and `lufy.issue_stream_grant` (sql/0820 and sql/0821: the same decision,
appending with `lufy.append_to_stream`, which appends after the other grant) answers instead.
The transaction commits asynchronously (`synchronous_commit = off`, for it only): docs/media.md
says what a crash can lose and why that is acceptable.

The tier: a resolver that is a `TierRule` (the payments context's entitlements, and the
default that gives everyone premium) says whether it needs the listener's subscriptions, which
the statement then returns, and works the tier out of them. Any other resolver (an async
callable given the connection, as tests inject) is pipelined behind the statement in the same
implicit transaction, as before: it sees the RLS context the function bound, at the cost of a
second round trip (the fetch is a flush, the commit the Sync at the end of the pipeline).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any, Literal, Protocol, cast, runtime_checkable

import psycopg
from psycopg import AsyncConnection

from lufy.db import Database
from lufy.errors import ConflictError, NotFoundError, ServiceUnavailableError
from lufy.eventstore import NewEvent
from lufy.eventstore.codec import EventCodec
from lufy.identity import Principal
from lufy.sqlfiles import load_queries

__all__ = ["GrantConnections", "Subscription", "TierRule", "record_grant"]

_Q = load_queries("lufy.catalog")
Tier = Literal["free", "premium"]
Resolver = Callable[[AsyncConnection[Any], uuid.UUID | None, datetime], Awaitable[Tier]]
_Issued = tuple[Tier | None, tuple[Any, ...] | None]  # (the resolver's tier, the statement's row)
_Issue = Callable[["Database | GrantConnections", dict[str, Any]], Awaitable[_Issued]]
# One subscription of the listener, newest first: (status, current period end, past due since).
Subscription = tuple[str, datetime | None, datetime | None]


@runtime_checkable
class TierRule(Protocol):
    """A tier resolver whose read the grant's own statement makes. `subscriptions`: whether the
    tier depends on the listener's subscriptions (then the statement returns them; an anonymous
    listener has none)."""

    subscriptions: bool

    def tier_of(self, subscriptions: Sequence[Subscription], now: datetime) -> Tier: ...


class GrantConnections:
    """The grants' own small pool: the application's pool checks every connection it hands out
    (one more round trip per grant); this one does not, and `record_grant` retries instead
    when a connection turns out broken (a server restart): the grant's event id makes the retry
    idempotent (`lufy.append_to_stream` answers a replay with the first append's positions).
    Opened on first use, closed by `aclose` (`Container.stop` calls it)."""

    def __init__(self, db: Database, *, max_size: int = 4) -> None:
        self._url = db.url
        self._prepare = db.prepare
        self._max_size = max_size
        self._db: Database | None = None
        self._opening: asyncio.Future[Database] | None = None

    async def _open(self) -> Database:
        db = Database(
            self._url,
            min_size=1,
            max_size=self._max_size,
            name="lufy-grants",
            prepare=self._prepare,
            check=False,
        )
        await db.open()
        self._db = db
        return db

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        db = self._db
        if db is None:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open())
            db = await asyncio.shield(self._opening)
        async with db.connection() as conn:
            yield conn

    async def check(self) -> None:
        """Replace the idle connections that are broken (after a failed attempt)."""
        if self._db is not None:
            await self._db.pool.check()

    async def aclose(self) -> None:
        if self._opening is not None:
            db = await self._opening
            self._db = self._opening = None
            await db.close()


async def record_grant(
    db: Database | GrantConnections,
    codec: EventCodec,
    resolver: Resolver | TierRule,
    principal: Principal | None,
    stream_type: str,
    track_id: uuid.UUID,
    grant: NewEvent,
) -> Tier:
    """Record `grant` (a `catalog.stream_authorized` event, `occurred_at` set) for `track_id`
    when `principal` may stream it, and return the listener's tier; NotFoundError when the track
    does not exist for the caller, ConflictError when it is not ready (nothing recorded)."""
    type_name, schema_version, data = codec.encode(grant.event)
    user_id = principal.user_id if principal is not None else None
    params = {
        "track_id": track_id,
        "user_id": user_id,
        "role": principal.role if principal is not None else None,
        "stream_type": stream_type,
        "event_id": grant.event_id,
        "type": type_name,
        "schema_version": schema_version,
        "data": data,
        "metadata": codec.encode_metadata(grant.metadata),
        "occurred_at": grant.occurred_at,
    }
    now = grant.occurred_at
    assert now is not None
    # Duck-typed: isinstance against a runtime-checkable protocol costs tens of microseconds.
    if hasattr(resolver, "tier_of"):
        rule: TierRule | None = cast(TierRule, resolver)
        params["subscriptions"] = bool(getattr(resolver, "subscriptions", False))
        issue: _Issue = _issue
    else:
        rule, params["subscriptions"] = None, False
        issue = partial(_issue_pipelined, resolver, user_id, now)
    try:
        tier, row = await issue(db, params)
    except ServiceUnavailableError:
        if not isinstance(db, GrantConnections):
            raise
        await db.check()  # a broken connection (a server restart): once more on a sound one
        tier, row = await issue(db, params)
    if row is None or not row[0]:
        raise NotFoundError("no such track")
    if not row[2]:
        raise ConflictError(f"the track cannot be streamed yet: it is {row[1]}")
    if rule is not None:
        statuses, ends, past_due = row[3] or (), row[4] or (), row[5] or ()
        return rule.tier_of(list(zip(statuses, ends, past_due, strict=True)), now)
    assert tier is not None
    return tier


async def _issue(db: Database | GrantConnections, params: dict[str, Any]) -> _Issued:
    """One statement, one round trip: it commits before it answers (autocommit). The grant is
    first tried as one INSERT (`lufy.try_stream_grant`, sql/0981); when another grant of the
    track took the stream's next version meanwhile, that attempt fails having written nothing
    and `lufy.issue_stream_grant` (which appends after the other grant) answers instead."""
    async with db.connection() as conn:
        try:
            cur = await conn.execute(_Q.try_stream_grant, params, prepare=True)
        except psycopg.errors.UniqueViolation:
            cur = await conn.execute(_Q.issue_stream_grant, params, prepare=True)
        return None, await cur.fetchone()


async def _issue_pipelined(
    resolver: Resolver,
    user_id: uuid.UUID | None,
    now: datetime,
    db: Database | GrantConnections,
    params: dict[str, Any],
) -> _Issued:
    """The statement, then `resolver` on the same connection in the same implicit transaction
    (pipeline mode sends no Sync between them): two round trips."""
    async with db.connection() as conn, conn.pipeline():
        cur = await conn.execute(_Q.issue_stream_grant, params, prepare=True)
        tier = await resolver(conn, user_id, now)  # its read (if any) flushes both
        return tier, await cur.fetchone()
