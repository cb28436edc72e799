"""Test and seed helpers: drive the analytics projections without the projector daemon, and
create artists and tracks directly in their read models (for tests and benchmarks only)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.types import ASGIApp, Receive, Scope, Send
from psycopg import AsyncConnection

from lufy.analytics import api, dashboard_api
from lufy.analytics.projections import PROJECTIONS
from lufy.catalog.events import STREAM_AUTH_STREAM, StreamAuthorized
from lufy.db import Database
from lufy.eventstore import ANY, Checkpoint, EventStore, NewEvent
from lufy.projections.applier import Batch, apply_batch
from lufy.sqlfiles import load_queries
from lufy.web.auth import Principal, provide_optional_principal, provide_principal
from lufy.web.context import request_context_middleware
from lufy.web.errors import exception_handlers

__all__ = [
    "LocalProjector",
    "http_client",
    "insert_artist",
    "insert_track",
    "issue_grant",
    "principal_app",
]

_Q = load_queries("lufy.testing", "analytics.sql")


class LocalProjector:
    """Applies every analytics projection to what the log holds beyond its checkpoint, the way
    the projector does: in commit-safe order, each batch by the log-applier in one transaction
    as role 'system'. Its checkpoint is kept in memory (not in lufy.checkpoints)."""

    def __init__(self, db: Database, store: EventStore, *, batch: int = 500) -> None:
        self.db = db
        self.store = store
        self.batch = batch
        self.checkpoint = Checkpoint.START

    async def run(self, *, wait_seconds: float = 120.0) -> int:
        """Apply everything committed before the call; returns the number of events applied.

        The read barrier is cluster-wide: a transaction still open anywhere (another test, an
        analyst's session) holds it back, so wait until it has passed this call's own xid.
        """
        async with self.db.connection() as conn:
            cur = await conn.execute(_Q.current_xact_id)
            row = await cur.fetchone()
        assert row is not None
        target = int(row[0])
        deadline = asyncio.get_running_loop().time() + wait_seconds
        applied = 0
        types = frozenset().union(*(p.handles for p in PROJECTIONS))
        while True:
            async with self.db.connection() as conn:
                page = await self.store.read_all(
                    conn, self.checkpoint, limit=self.batch, types=types
                )
                if page.events:
                    batch = Batch(self.checkpoint, page.checkpoint, page.events)
                    await apply_batch(conn, PROJECTIONS, batch, cursor=None)
            applied += len(page.events)
            self.checkpoint = page.checkpoint
            if page.events:
                continue
            if page.barrier > target:
                return applied
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the log's read barrier did not pass; a transaction is open")
            await asyncio.sleep(0.02)


async def insert_artist(
    admin: AsyncConnection[Any], *, name: str = "Artist", role: str = "artist"
) -> uuid.UUID:
    user_id = uuid.uuid4()
    await admin.execute(
        _Q.insert_artist,
        [user_id, f"{user_id.hex[:12]}@example.test", name, role],
    )
    return user_id


async def insert_track(
    admin: AsyncConnection[Any], artist_id: uuid.UUID, *, title: str = "Track"
) -> uuid.UUID:
    track_id = uuid.uuid4()
    await admin.execute(
        _Q.insert_track,
        [track_id, artist_id, title],
    )
    return track_id


async def issue_grant(
    db: Database,
    store: EventStore,
    track_id: uuid.UUID,
    *,
    listener_id: uuid.UUID | None = None,
    at: datetime | None = None,
    grant_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Append the `catalog.stream_authorized` event that `GET /api/music/tracks/{id}/stream`
    appends for a grant issued at `at` (default: an hour ago); returns the grant id."""
    grant = grant_id or uuid.uuid4()
    issued = at or datetime.now(UTC) - timedelta(hours=1)
    event = StreamAuthorized(
        track_id=track_id,
        listener_id=listener_id,
        expires_at=issued + timedelta(hours=1),
        delivery="local",
        grant_id=grant,
    )
    async with db.transaction(role="system") as conn:
        await store.append(
            conn,
            STREAM_AUTH_STREAM,
            str(track_id),
            [NewEvent(event=event, occurred_at=issued)],
            expected=ANY,
        )
    return grant


def principal_app(container: Any) -> Any:
    """The analytics and dashboard routes on a bare Litestar app whose caller is named by a
    test header `x-test-principal: <role>:<user id>` (tests only; the real app authenticates
    bearer tokens)."""

    def as_principal(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            for key, value in scope.get("headers", ()):
                if key == b"x-test-principal":
                    role, _, user = value.decode().partition(":")
                    scope.setdefault("state", {})["principal"] = Principal(
                        user_id=uuid.UUID(user), role=role, session_id=uuid.uuid4()
                    )
            await app(scope, receive, send)

        return middleware

    async def provide_container(state: State) -> Any:
        return state.container

    # The services the handlers ask for, read per request from the container (as create_app).
    async def provide_ingestor(state: State) -> Any:
        return state.container.ingestor

    async def provide_dashboard(state: State) -> Any:
        return state.container.dashboard

    return Litestar(
        route_handlers=[*api.ROUTES, *dashboard_api.ROUTES],
        middleware=[request_context_middleware, as_principal],
        dependencies={
            "container": Provide(provide_container),
            "ingestor": Provide(provide_ingestor),
            "dashboard": Provide(provide_dashboard),
            "principal": Provide(provide_principal),
            "maybe_principal": Provide(provide_optional_principal),
        },
        exception_handlers=exception_handlers,
        state=State({"container": container}),
        request_max_body_size=2 * 1024 * 1024,
    )


@asynccontextmanager
async def http_client(container: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling `principal_app(container)` in the caller's event loop (where the
    container's pool lives); the container is started and stopped by the caller."""
    transport = httpx.ASGITransport(app=principal_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
