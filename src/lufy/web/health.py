"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from lufy.bootstrap import Container
from lufy.observability import render_metrics

__all__ = ["ROUTES"]


@get("/healthz", include_in_schema=True, tags=["operations"], summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check_db(container: Container) -> str:
    async def probe() -> None:
        async with container.db.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM lufy.schema_migrations")
            await cur.fetchone()

    try:
        await asyncio.wait_for(probe(), timeout=2.0)
        return "ok"
    except TimeoutError:
        return "error: timed out"
    except Exception as exc:
        return (
            f"error: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        )


async def _check_redis(container: Container) -> str:
    try:
        await asyncio.wait_for(container.redis.ping(), timeout=2.0)
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


@get("/readyz", tags=["operations"], summary="Database and Redis are reachable")
async def readyz(state: State) -> Response[dict[str, Any]]:
    container: Container = state.container
    db, cache = await asyncio.gather(_check_db(container), _check_redis(container))
    ready = db == "ok" and cache == "ok"
    body = {"status": "ready" if ready else "not ready", "database": db, "redis": cache}
    return Response(body, status_code=200 if ready else 503)


@get("/metrics", tags=["operations"], summary="Prometheus metrics", media_type="text/plain")
async def metrics(state: State) -> Response[bytes]:
    payload, content_type = await render_metrics(state.container)
    return Response(payload, media_type=content_type)


ROUTES = [healthz, readyz, metrics]
