"""Completes the generated OpenAPI document with the errors every route can answer.

Handlers declare their success response and the errors particular to them; the errors that come
from shared machinery (validation, authentication, rate limiting, an unreachable database, a path
that matches no resource) are the same everywhere, so they are documented once, here, as RFC 9457
problem+json with an example each. Schemathesis checks the document against real answers
(tests/e2e/test_openapi_fuzz.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPI,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec import OpenAPIHeader as Header
from litestar.openapi.spec import OpenAPIMediaType as MediaType
from litestar.openapi.spec import OpenAPIResponse as Response
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from lufy.analytics.events import ANALYTICS_TYPES
from lufy.analytics.ingest import MAX_BATCH_EVENTS, IncomingEvent
from lufy.web.openapi_clients import complete_for_clients

__all__ = ["PROBLEM_SCHEMA", "complete_openapi"]

PROBLEM_JSON = "application/problem+json"

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="Problem",
    description="An RFC 9457 problem document. `detail` says in words what to change; "
    "validation failures also list `errors`, rejected rate-limited calls carry Retry-After.",
    required=["type", "status", "title", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, examples=["about:blank"]),
        "status": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
        "title": Schema(type=OpenAPIType.STRING),
        "detail": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.OBJECT),
            description="Validation failures: where (`key`, `source`) and what (`message`).",
        ),
    },
)

_EXAMPLES: dict[int, tuple[str, str, str]] = {
    400: ("Invalid request", "body.email: Expected `str`, got `int`", "The request is malformed"),
    401: (
        "Authentication required",
        "a valid bearer access token is required",
        "No valid credentials (a missing, expired or revoked token)",
    ),
    403: (
        "Forbidden",
        "only the track's artist may change it",
        "Signed in, but not allowed to do this",
    ),
    404: ("Not found", "no such track", "No such resource (or not visible to the caller)"),
    405: ("Method not allowed", "Method Not Allowed", "The path exists, the method does not"),
    409: (
        "Conflict",
        "the track is already published",
        "The resource's current state forbids this change",
    ),
    413: (
        "Payload too large",
        "a batch holds at most 500 events and 1 MiB",
        "The body is larger than this route accepts",
    ),
    415: (
        "Unsupported media type",
        "send application/json",
        "The body's Content-Type is not accepted here",
    ),
    422: (
        "Validation failed",
        "tz: unknown time zone 'Mars/Base'",
        "Well-formed but semantically invalid input",
    ),
    429: (
        "Too many requests",
        "rate limit of 100 requests per 60 s exceeded; retry in 17 s",
        "Rate limited: wait `Retry-After` seconds",
    ),
    503: (
        "Service unavailable",
        "database unavailable, retry shortly",
        "A dependency (PostgreSQL, Redis for auth routes) is unreachable: retry after "
        "`Retry-After` seconds",
    ),
}

_RETRY_AFTER = Header(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="Seconds to wait before retrying",
)
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _problem_response(status: int) -> Response:
    title, detail, description = _EXAMPLES[status]
    headers: dict[str, Header | Reference] | None = None
    if status in (429, 503):
        headers = {"Retry-After": _RETRY_AFTER}
    return Response(
        description=description,
        headers=headers,
        content={
            PROBLEM_JSON: MediaType(
                schema=Reference(ref="#/components/schemas/Problem"),
                examples={
                    title.lower().replace(" ", "-"): Example(
                        value={
                            "type": "about:blank",
                            "status": status,
                            "title": title,
                            "detail": detail,
                        }
                    )
                },
            )
        },
    )


def _errors_for(path: str, method: str, operation: Operation) -> list[int]:
    """The shared errors an operation can answer, from what the shared machinery does."""
    codes = [400]
    has_path_params = "{" in path
    if path.startswith(("/api/", "/media/")):
        # Any caller may send a bad or expired token (401); role checks answer 403; services
        # reject semantically invalid input with 422; PostgreSQL may be down (503).
        codes += [401, 403, 422, 503]
        if path.startswith("/api/"):
            codes.append(429)
        if method in ("post", "put", "patch"):
            codes += [409, 413, 415]
    if has_path_params or path.startswith("/media/"):
        codes.append(404)
    if path == "/metrics":
        # Without METRICS_TOKEN a remote caller gets 403, with it a wrong token 401; with
        # METRICS_PORT the API port answers 404 (lufy.web.health).
        codes += [401, 403, 404]
    return codes


def complete_openapi(app: Litestar) -> None:
    """Add the shared error responses (and the Problem schema) to every operation of `app`'s
    document, when the document is first built. Generating it costs several times creating the
    app, so an app never asked for its schema (most tests) never pays for it. Litestar offers no
    hook for this and its plugin is slotted, so the plugin class's builder is wrapped once and
    completes each document it builds; should Litestar's private plugin
    change shape, the document is completed at once instead. (Every Litestar app of the
    process is completed this way; a Lufy process serves only Lufy's.)"""
    plugin = next((p for p in app.plugins if hasattr(p, "provide_openapi")), None)
    if plugin is None or not _wrap_builder(type(plugin)):
        _complete(app.openapi_schema, app)


def _wrap_builder(plugin_class: type[Any]) -> bool:
    original = getattr(plugin_class, "provide_openapi", None)
    if original is None or "_openapi" not in getattr(plugin_class, "__slots__", ("_openapi",)):
        return False
    if getattr(original, "_lufy_completes", False):
        return True

    def provide_openapi(self: Any) -> OpenAPI:
        first = getattr(self, "_openapi", None) is None
        document: OpenAPI = original(self)
        if first:
            _complete(document, getattr(self, "app", None))
        return document

    provide_openapi._lufy_completes = True  # type: ignore[attr-defined]
    plugin_class.provide_openapi = provide_openapi
    return True


def _complete(document: OpenAPI, app: Litestar | None = None) -> None:
    components = document.components
    if isinstance(components, list):  # Litestar allows a list; it is one object here
        components = components[0] if components else Components()
    components = components or Components()
    document.components = components
    components.schemas = {**(components.schemas or {}), "Problem": PROBLEM_SCHEMA}
    for path, item in (document.paths or {}).items():
        for method in _METHODS:
            operation: Operation | None = getattr(item, method, None)
            if operation is None:
                continue
            responses: dict[str, Any] = dict(operation.responses or {})
            for status in _errors_for(path, method, operation):
                key = str(status)
                existing = responses.get(key)
                if existing is None or _is_litestar_default(existing):
                    responses[key] = _problem_response(status)
                elif (
                    path.startswith(("/api/", "/media/"))
                    and isinstance(existing, Response)
                    and existing.content
                    and PROBLEM_JSON not in existing.content
                ):
                    # A handler documented this error: make sure it says problem+json.
                    problem = _problem_response(status).content or {}
                    existing.content[PROBLEM_JSON] = problem[PROBLEM_JSON]
            if path.endswith(".csv"):
                _document_csv(responses)
            if path == "/api/analytics/events" and method == "post":
                operation.request_body = operation.request_body or _ingest_body()
            operation.responses = responses
    if app is not None:
        complete_for_clients(document, app)


def _ingest_body() -> RequestBody:
    """The ingestion route reads its raw body itself (it also takes text/plain from
    sendBeacon), so Litestar cannot infer the schema: it is generated here from the Struct the
    route decodes (`IncomingEvent`), so the limits it documents are the ones it enforces."""
    _, components = msgspec.json.schema_components([IncomingEvent])
    event = _from_json_schema(components["IncomingEvent"])
    assert event.properties is not None
    # What msgspec does not say from the Struct alone: the accepted types (checked per event,
    # so an unknown one is a per-event rejection, not a failed batch) and RFC 3339 instants.
    event.properties["type"] = Schema(type=OpenAPIType.STRING, enum=sorted(ANALYTICS_TYPES))
    occurred_at = event.properties["occurred_at"]
    assert isinstance(occurred_at, Schema)
    occurred_at.format = OpenAPIFormat.DATE_TIME
    batch = Schema(
        type=OpenAPIType.OBJECT,
        required=["events"],
        properties={
            "events": Schema(type=OpenAPIType.ARRAY, items=event, max_items=MAX_BATCH_EVENTS)
        },
    )
    return RequestBody(
        required=True,
        description="At most 500 events and 1 MiB; also accepted as text/plain (sendBeacon).",
        content={
            "application/json": MediaType(schema=batch),
            "text/plain": MediaType(schema=Schema(type=OpenAPIType.STRING)),
        },
    )


_JSON_SCHEMA_KEYS = {
    "maxLength": "max_length",
    "minLength": "min_length",
    "minimum": "minimum",
    "maximum": "maximum",
    "required": "required",
    "description": "description",
    "enum": "enum",
    "maxItems": "max_items",
}


def _from_json_schema(node: dict[str, Any]) -> Schema:
    """A JSON Schema node as msgspec writes it, as Litestar's OpenAPI Schema."""
    kwargs: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            kwargs["type"] = OpenAPIType(value)
        elif key == "format":
            kwargs["format"] = OpenAPIFormat(value)
        elif key == "properties":
            kwargs["properties"] = {name: _from_json_schema(v) for name, v in value.items()}
        elif key == "anyOf":
            kwargs["any_of"] = [_from_json_schema(v) for v in value]
        elif key == "items":
            kwargs["items"] = _from_json_schema(value)
        elif key in _JSON_SCHEMA_KEYS:
            kwargs[_JSON_SCHEMA_KEYS[key]] = value
    return Schema(**kwargs)


def _document_csv(responses: dict[str, Any]) -> None:
    """A `.csv` route answers text/csv; a handler returning `Response[str]` without a
    `media_type` on its decorator is documented by Litestar as JSON."""
    ok = responses.get("200")
    if isinstance(ok, Response) and ok.content and "text/csv" not in ok.content:
        ok.content = {
            "text/csv": MediaType(
                schema=Schema(type=OpenAPIType.STRING, description="RFC 4180 CSV with a header"),
                example="t,value\n2026-11-01T00:00:00+00:00,42\n",
            )
        }


def _is_litestar_default(response: Any) -> bool:
    """Litestar's generated 400 ("Bad request syntax or unsupported method") describes its own
    error body, not the problem+json document Lufy answers with."""
    return isinstance(response, Response) and response.description.startswith("Bad request syntax")
