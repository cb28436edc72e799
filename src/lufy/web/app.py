"""create_app: the Litestar application (thin handlers over the services of bootstrap.py)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from litestar import Litestar, route
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath

from lufy.bootstrap import Container, bootstrap
from lufy.catalog.api import lean_stream_route
from lufy.contexts import CONTEXTS
from lufy.errors import NotFoundError
from lufy.logs import configure_logging
from lufy.media import edge_asgi
from lufy.media.uploads import UploadGate
from lufy.observability import metrics_middleware
from lufy.web import datalag, frontend, health, ratelimit
from lufy.web.auth import provide_optional_principal, provide_principal
from lufy.web.context import request_context_middleware
from lufy.web.errors import exception_handlers
from lufy.web.metrics_port import metrics_port
from lufy.web.openapi import complete_openapi

__all__ = ["create_app"]

# The web layer's own edges (ROUTES and MIDDLEWARE), placed among the contexts' `api` modules:
# rate limiting right after the accounts edge, whose authentication middleware sets the principal
# it counts by; the data-lag header innermost, after every other.
_EDGES_AFTER: dict[str, tuple[ModuleType, ...]] = {"accounts": (ratelimit,)}
_EDGES_LAST = (datalag,)
MAX_BODY = 2 * 1024 * 1024
# The container's services that handlers may ask for by name.
SERVICES = ("settings", "storage", "accounts", "catalog", "payments", "ingestor", "dashboard")


def _edges() -> list[ModuleType]:
    """The HTTP edges in the order of their routes (and so of the OpenAPI document) and of their
    middleware: each context's `api` modules in `lufy.contexts` order, and the web layer's own."""
    edges: list[ModuleType] = []
    for context in CONTEXTS:
        edges.extend(importlib.import_module(context.module(name)) for name in context.api)
        edges.extend(_EDGES_AFTER.get(context.name, ()))
    return [*edges, *_EDGES_LAST]


def _collect(edges: list[ModuleType], attribute: str) -> list[Any]:
    return [item for module in edges for item in getattr(module, attribute, ())]


@route(
    "/api/{rest:path}",
    http_method=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
async def api_not_found(rest: FromPath[str]) -> None:
    # Litestar runs middleware only for matched routes: without this, an unknown /api path
    # would answer without request ids and rate-limit headers, and would not be counted.
    raise NotFoundError(f"no API route at /api{rest}")


def _cors(origins: list[str]) -> CORSConfig | None:
    """Browsers on other origins (CORS_ALLOWED_ORIGINS) may call the API with a bearer token
    (no cookies) and read the rate-limit and request-id headers."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-Id", "X-Correlation-Id"],
        expose_headers=["RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-Id", "Location"],
        allow_credentials=False,
        max_age=600,
    )


def _service_dependencies() -> dict[str, Provide]:
    """Each service of the container, injected into handlers by its attribute's name
    (`catalog: NamedDependency[CatalogService]`). Read per request, so a test may swap one."""

    def provider(name: str) -> Provide:
        async def provide(state: State) -> Any:
            return getattr(state.container, name)

        return Provide(provide)

    async def provide_upload_gate(state: State) -> UploadGate:
        return state.container.catalog.ensure_upload_open  # type: ignore[no-any-return]

    return {name: provider(name) for name in SERVICES} | {
        "upload_gate": Provide(provide_upload_gate)
    }


def create_app(container: Container | None = None) -> Litestar:
    container = container or bootstrap()
    configure_logging(container.settings.LUFY_ENV)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await container.start()
        try:
            yield
        finally:
            await container.stop()
            await ratelimit.limiter_of(container).aclose()

    async def provide_container(state: State) -> Container:
        return state.container  # type: ignore[no-any-return]

    edges = _edges()
    routes = _collect(edges, "ROUTES")
    app = Litestar(
        route_handlers=[*health.ROUTES, *routes, api_not_found, *frontend.ROUTES],
        middleware=[request_context_middleware, metrics_middleware, *_collect(edges, "MIDDLEWARE")],
        dependencies={
            "container": Provide(provide_container),
            **_service_dependencies(),
            "principal": Provide(provide_principal),
            "maybe_principal": Provide(provide_optional_principal),
        },
        exception_handlers=exception_handlers,
        lifespan=[lifespan, metrics_port],
        state=State({"container": container}),
        request_max_body_size=MAX_BODY,
        openapi_config=OpenAPIConfig(
            title="Lufy API",
            version="0.1.0",
            description="Event-sourced, analytics-first music platform. Errors are RFC 9457 "
            "problem+json documents.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
        # Records go through lufy.logs' handler (configure_logging above); Litestar's default
        # configuration would put its own on the root logger, in its own format. Unhandled
        # errors are logged by lufy.web.errors.
        logging_config=None,
        cors_config=_cors(container.settings.cors_allowed_origins),
    )
    complete_openapi(app)
    # The stream authorisation is answered in front of Litestar's routing, through the same
    # middleware (lufy.catalog.api).
    app.asgi_handler = lean_stream_route(app.asgi_handler, container)
    # The local edge (`GET /media/hls/…`) in front of everything: a player's every request.
    app.asgi_handler = edge_asgi.wrap(app.asgi_handler, container)
    return app
