"""Connection pools and the per-transaction user context that Row-Level Security reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from lufy.errors import ServiceUnavailableError
from lufy.sqlfiles import load_queries

__all__ = ["Database", "connection_kwargs", "set_context"]

_SET_CONTEXT = load_queries("lufy", "db.sql").set_context


def connection_kwargs(*, prepare: bool = True) -> dict[str, Any]:
    """Keyword arguments of every pooled connection. `prepare=False` turns server-side prepared
    statements off (`DATABASE_PREPARED_STATEMENTS=false`): a transaction-mode PgBouncer before
    1.21 hands each transaction to any server connection, where a statement prepared on
    another one does not exist."""
    kwargs: dict[str, Any] = {"autocommit": True}
    if not prepare:
        kwargs["prepare_threshold"] = None
    return kwargs


async def set_context(
    conn: AsyncConnection[Any], *, user_id: uuid.UUID | str | None, role: str | None
) -> None:
    """Bind the caller to the current transaction only (`is_local`), never to the session:
    a pooled connection must not carry one request's identity into the next."""
    await conn.execute(
        _SET_CONTEXT,
        {"user_id": str(user_id) if user_id else "", "role": role or ""},
        prepare=True,
    )


class Database:
    """The app's pool. `transaction()` is the one way request code touches PostgreSQL."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        name: str = "lufy",
        prepare: bool = True,
        check: bool = True,
    ):
        self.url = url
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            name=name,
            timeout=5.0,
            kwargs=connection_kwargs(prepare=prepare),
            # A round trip per checkout, so that a connection broken since it was returned
            # (a server restart) is replaced before use. `check=False` is for callers that
            # retry on a broken connection themselves (lufy.catalog.grants).
            check=AsyncConnectionPool.check_connection if check else None,
        )
        self.prepare = prepare

    async def open(self, *, wait: bool = False) -> None:
        await self.pool.open(wait=wait)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        try:
            async with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise ServiceUnavailableError(f"database unavailable: {_first_line(exc)}") from None

    @asynccontextmanager
    async def transaction(
        self, *, user_id: uuid.UUID | str | None = None, role: str | None = None
    ) -> AsyncIterator[AsyncConnection[Any]]:
        async with self.connection() as conn, conn.transaction():
            if user_id is not None or role is not None:
                await set_context(conn, user_id=user_id, role=role)
            yield conn


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
