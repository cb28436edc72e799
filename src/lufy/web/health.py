"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hashlib
from functools import cache
from typing import Literal

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from lufy.bootstrap import Container
from lufy.errors import ServiceUnavailableError
from lufy.observability import render_metrics
from lufy.sqlfiles import data_dir

__all__ = ["ROUTES", "Readiness"]


class Readiness(msgspec.Struct, kw_only=True):
    """Whether this process can serve: each check is "ok" or "error: <why>"."""

    status: Literal["ready", "not ready"]
    database: str
    redis: str
    migrations: str


@get("/healthz", include_in_schema=True, tags=["operations"], summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@cache
def _shipped_migrations() -> dict[str, str]:
    """The migrations this build ships: file name -> checksum (as `lufy migrate` records it)."""
    return {
        entry.name: hashlib.sha256(entry.read_text(encoding="utf-8").encode()).hexdigest()
        for entry in data_dir("sql").iterdir()
        if entry.name.endswith(".sql")
    }


def _migration_state(applied: dict[str, str]) -> str:
    shipped = _shipped_migrations()
    pending = sorted(set(shipped) - set(applied))
    if pending:
        more = f" (+{len(pending) - 1} more)" if len(pending) > 1 else ""
        return f"error: migration {pending[0]} not applied{more}: run `lufy migrate`"
    changed = sorted(name for name in shipped if applied[name] != shipped[name])
    if changed:
        return f"error: migration {changed[0]} differs from the applied one"
    unknown = sorted(set(applied) - set(shipped))
    if unknown:
        # The database is ahead of this build (a newer release migrated it): not safe to serve.
        return f"error: database has migration {unknown[0]} that this build does not ship"
    return "ok"


async def _check_db(container: Container) -> tuple[str, str]:
    async def probe() -> dict[str, str]:
        async with container.db.connection() as conn:
            cur = await conn.execute("SELECT filename, checksum FROM lufy.schema_migrations")
            return {str(name): str(checksum) for name, checksum in await cur.fetchall()}

    try:
        applied = await asyncio.wait_for(probe(), timeout=2.0)
    except TimeoutError:
        return "error: timed out", "unknown"
    except ServiceUnavailableError as exc:
        return f"error: {exc.detail}", "unknown"
    except Exception as exc:
        text = str(exc).strip()
        return f"error: {text.splitlines()[0] if text else type(exc).__name__}", "unknown"
    return "ok", _migration_state(applied)


async def _check_redis(container: Container) -> str:
    try:
        await asyncio.wait_for(container.redis.ping(), timeout=2.0)
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


@get(
    "/readyz",
    tags=["operations"],
    summary="Database and Redis are reachable and migrations are current",
    description="200 when this process can serve traffic; 503 (same body) when PostgreSQL or "
    "Redis does not answer within 2 seconds or the database's migrations differ from the ones "
    "this build ships. Load balancers route on it.",
    responses={
        503: ResponseSpec(
            data_container=Readiness,
            description="Not ready: a dependency is down or migrations are not current",
            examples=[
                Example(
                    value={
                        "status": "not ready",
                        "database": "ok",
                        "redis": "error: ConnectionError",
                        "migrations": "ok",
                    }
                )
            ],
        )
    },
)
async def readyz(state: State) -> Response[Readiness]:
    container: Container = state.container
    (db, migrations), cache_state = await asyncio.gather(
        _check_db(container), _check_redis(container)
    )
    ready = db == "ok" and cache_state == "ok" and migrations == "ok"
    body = Readiness(
        status="ready" if ready else "not ready",
        database=db,
        redis=cache_state,
        migrations=migrations,
    )
    return Response(body, status_code=200 if ready else 503)


@get("/metrics", tags=["operations"], summary="Prometheus metrics", media_type="text/plain")
async def metrics(state: State) -> Response[bytes]:
    payload, content_type = await render_metrics(state.container)
    # Litestar appends "; charset=utf-8" to text/* itself: pass the type without it.
    media_type = content_type.replace("; charset=utf-8", "")
    return Response(payload, media_type=media_type)


ROUTES = [healthz, readyz, metrics]
