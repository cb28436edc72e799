"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from functools import cache
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from lufy.attached import Attached
from lufy.bootstrap import Container
from lufy.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from lufy.observability import render_metrics
from lufy.sqlfiles import data_dir, load_queries
from lufy.web.clientip import client_ip_for, parse_ip

__all__ = ["ROUTES", "Readiness", "ReadinessProbe", "readiness_probe", "token_matches"]

# The query `lufy migrate` reads what it applied with: readiness compares it with this build's.
_MIGRATE_QUERIES = load_queries("lufy", "migrate.sql")


class Readiness(msgspec.Struct, kw_only=True):
    """Whether this process can serve: each check is "ok" or "error: <why>".

    `ahead_of_build` lists the migrations the database holds that this build does not ship: a
    newer release has run its expand migrations, which this build is written to ignore (see
    docs/operations.md, "Expand and contract"), so it stays ready.
    """

    status: Literal["ready", "not ready"]
    database: str
    redis: str
    migrations: str
    ahead_of_build: list[str] = msgspec.field(default_factory=list)


# How long one readiness probe answers every /readyz of this process. A load balancer checks
# each instance every few seconds; a flood of /readyz must not become a flood of queries.
READINESS_TTL = 1.0


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


def _migration_state(applied: dict[str, str]) -> tuple[str, list[str]]:
    """("ok" or "error: ...", the applied migrations this build does not ship)."""
    shipped = _shipped_migrations()
    pending = sorted(set(shipped) - set(applied))
    ahead = sorted(set(applied) - set(shipped))
    if pending:
        more = f" (+{len(pending) - 1} more)" if len(pending) > 1 else ""
        return f"error: migration {pending[0]} not applied{more}: run `lufy migrate`", ahead
    changed = sorted(name for name in shipped if applied[name] != shipped[name])
    if changed:
        return f"error: migration {changed[0]} differs from the applied one", ahead
    # A database ahead of this build was migrated by a newer release. Migrations are
    # expand-only while two releases run side by side (docs/operations.md), so this build's
    # queries still hold: it stays ready, and says by how much the database is ahead.
    return "ok", ahead


async def _check_db(container: Container) -> tuple[str, tuple[str, list[str]]]:
    async def probe() -> dict[str, str]:
        async with container.db.connection() as conn:
            cur = await conn.execute(_MIGRATE_QUERIES.applied_migrations)
            return {str(name): str(checksum) for name, checksum in await cur.fetchall()}

    try:
        applied = await asyncio.wait_for(probe(), timeout=2.0)
    except TimeoutError:
        return "error: timed out", ("unknown", [])
    except ServiceUnavailableError as exc:
        return f"error: {exc.detail}", ("unknown", [])
    except Exception as exc:
        text = str(exc).strip()
        return f"error: {text.splitlines()[0] if text else type(exc).__name__}", ("unknown", [])
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
    summary="Database and Redis are reachable and this build's migrations are applied",
    description="200 when this process can serve traffic; 503 (same body) when PostgreSQL or "
    "Redis does not answer within 2 seconds, or a migration this build ships is missing or "
    "differs from the applied one. A database ahead of this build (a newer release ran its "
    "expand migrations) is ready, with those migrations listed in `ahead_of_build`. The answer "
    "comes from one probe per second per process. Load balancers route on it.",
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
                        "ahead_of_build": [],
                    }
                )
            ],
        )
    },
)
async def readyz(state: State) -> Response[Readiness]:
    body = await readiness_probe(state.container).result()
    return Response(body, status_code=200 if body.status == "ready" else 503)


async def _probe(container: Container) -> Readiness:
    (db, (migrations, ahead)), cache_state = await asyncio.gather(
        _check_db(container), _check_redis(container)
    )
    ready = db == "ok" and cache_state == "ok" and migrations == "ok"
    return Readiness(
        status="ready" if ready else "not ready",
        database=db,
        redis=cache_state,
        migrations=migrations,
        ahead_of_build=ahead,
    )


class ReadinessProbe:
    """One probe at a time, its answer reused for `ttl` seconds by every caller.

    Concurrent callers wait for the probe in flight instead of starting their own, so the
    queries /readyz costs do not grow with how often, or how many at once, it is asked.
    """

    def __init__(self, container: Container, *, ttl: float = READINESS_TTL) -> None:
        self._container = container
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._answer: Readiness | None = None
        self._at = 0.0
        self.probes = 0

    def expire(self) -> None:
        """Forget the last answer: the next caller probes again."""
        self._answer = None

    async def result(self) -> Readiness:
        if self._answer is not None and time.monotonic() - self._at < self._ttl:
            return self._answer
        async with self._lock:
            if self._answer is None or time.monotonic() - self._at >= self._ttl:
                self.probes += 1
                self._answer = await _probe(self._container)
                self._at = time.monotonic()
            return self._answer


_PROBES: Attached[ReadinessProbe] = Attached(ReadinessProbe)


def readiness_probe(container: Container) -> ReadinessProbe:
    """The container's readiness probe (one per container)."""
    return _PROBES.of(container)


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    description="Prometheus text. With `METRICS_PORT` set it is served on that port only (404 "
    "here); with `METRICS_TOKEN` set it needs `Authorization: Bearer <token>` (401 otherwise); "
    "with neither, only loopback callers get it (403 otherwise). State read from PostgreSQL and "
    "Redis is cached for a few seconds, so scrapes cost at most one round of queries per "
    "window per process.",
    media_type="text/plain",
)
async def metrics(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    container: Container = state.container
    settings = container.settings
    if settings.METRICS_PORT is not None:
        raise NotFoundError("metrics are served on their own port (METRICS_PORT), not here")
    authorization = request.headers.get("authorization")
    if settings.METRICS_TOKEN is not None:
        if not token_matches(authorization, settings.METRICS_TOKEN):
            raise AuthenticationError("/metrics needs the bearer token METRICS_TOKEN")
    elif not _is_loopback(client_ip_for(request.scope)):
        raise PermissionDeniedError(
            "/metrics answers loopback callers only: set METRICS_TOKEN or METRICS_PORT to "
            "scrape it from elsewhere"
        )
    payload, content_type = await render_metrics(container)
    # Litestar appends "; charset=utf-8" to text/* itself: pass the type without it.
    media_type = content_type.replace("; charset=utf-8", "")
    return Response(payload, media_type=media_type)


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header carries `Bearer <token>` (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _is_loopback(address: str) -> bool:
    # The address the rate limiter uses: forwarded headers count only from TRUSTED_PROXIES, so
    # `X-Forwarded-For: 127.0.0.1` from anyone else does not make a caller local.
    parsed = parse_ip(address)
    return parsed is not None and parsed.is_loopback


ROUTES = [healthz, readyz, metrics]
