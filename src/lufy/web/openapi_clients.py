"""Makes the OpenAPI document good enough to generate a typed client from (openapi-typescript
for the web app, `frontend/src/api/schema.d.ts`), in one place rather than in every context's
api.py:

- `operationId`: the context (the path's first segment under /api) and the handler's name, in
  camelCase: `authSignIn`, `musicListTracks`, `dashboardOverview`;
- `security` from what a handler asks for: `principal` (a bearer token is required) or
  `maybe_principal` (optional: `[{BearerToken: []}, {}]`);
- response schemas list every property as `required` (msgspec always encodes every field; a
  field that may be absent in a *request* keeps its default instead);
- enums for the dashboard's `metric`, `granularity`, `dimension` and `sort`, and a user's `role`;
  `format: date-time` on instants sent as strings; examples on the main responses;
- the rate-limit headers (`RateLimit`, `RateLimit-Policy`) on every /api response.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from litestar import Litestar
from litestar.openapi.spec import OpenAPI, Operation, Parameter, Reference, Schema
from litestar.openapi.spec import OpenAPIHeader as Header
from litestar.openapi.spec import OpenAPIResponse as Response
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.routes import HTTPRoute

from lufy.analytics.dashboard import DIMENSIONS, METRICS, SORTS
from lufy.bootstrap import bootstrap
from lufy.settings import load_settings

__all__ = ["complete_for_clients", "operation_id"]

BEARER = "BearerToken"
_METHODS = ("get", "put", "post", "delete", "patch")

_RATE_LIMIT_HEADERS: dict[str, Header | Reference] = {
    "RateLimit": Header(
        schema=Schema(type=OpenAPIType.STRING, examples=['"user";r=42;t=17']),
        description="The caller's quota left in the current window (IETF draft "
        "ratelimit-headers): remaining requests `r`, seconds until reset `t`",
    ),
    "RateLimit-Policy": Header(
        schema=Schema(type=OpenAPIType.STRING, examples=['"user";q=100;w=60']),
        description="The policy that applies: quota `q` requests per window `w` seconds",
    ),
}

_ROLES = ["listener", "artist", "admin"]
_GRANULARITIES = ["hour", "day", "week", "month"]

# Response fields sent as strings that are instants.
_INSTANTS = {("Point", "t")}

_USER = {
    "id": "6f0f8a52-1c3e-4c1b-9a55-0b7c2d1e9f10",
    "email": "ada@example.com",
    "display_name": "Ada",
    "role": "artist",
    "email_verified": True,
}
_METRICS = {
    "streams": 1250,
    "listeners": 830,
    "listen_seconds": 171_000,
    "completion_rate": 0.62,
    "skip_rate": 0.21,
    "likes": 40,
    "followers": 12,
}
_TRACK = {
    "id": "0b8f6c1e-3f59-4d3c-8d3a-7c1f2e9b4a11",
    "artist_id": _USER["id"],
    "title": "Night Drive",
    "status": "ready",
    "failure_reason": None,
    "duration_ms": 215_000,
    "published": True,
    "created_at": "2026-11-02T10:15:00Z",
}
_EXAMPLES: dict[str, Any] = {
    "User": _USER,
    "UserEnvelope": {"user": _USER},
    "AuthTokens": {
        "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2ZjBmIn0.c2lnbmF0dXJl",
        "token_type": "Bearer",
        "expires_in": 900,
        "refresh_token": "rt_8Qm2c3Jt0bS9",
        "user": _USER,
    },
    "Track": _TRACK,
    "TrackList": {"tracks": [_TRACK]},
    "UploadTicket": {
        "upload_id": "5a1e2d3c-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
        "track_id": _TRACK["id"],
        "method": "PUT",
        "url": "https://lufy.example/media/uploads/5a1e2d3c-4b5a-4c6d-8e7f-9a0b1c2d3e4f?token=…",
        "headers": {"Content-Type": "audio/wav"},
        "expires_at": "2026-12-06T13:00:00Z",
    },
    "StreamGrant": {
        "url": f"https://lufy.example/media/hls/eyJ…/{_TRACK['id']}/master.m3u8",
        "token": "eyJ…",
        "expires_at": "2026-12-06T13:00:00Z",
        "grant_id": "9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
    },
    "Overview": {**_METRICS, "previous": {**_METRICS, "streams": 1000, "listeners": 700}},
    "TimeseriesResponse": {
        "points": [
            {"t": "2026-10-25T00:00:00+02:00", "value": 40},
            {"t": "2026-10-26T00:00:00+01:00", "value": 52},
        ]
    },
    "TracksResponse": {"rows": [{"track_id": _TRACK["id"], "title": "Night Drive", **_METRICS}]},
    "BreakdownResponse": {
        "rows": [
            {"key": "DE", "streams": 700, "listeners": 420},
            {"key": "unknown", "streams": 12, "listeners": 9},
        ]
    },
    "RealtimeResponse": {"points": [{"t": "2026-12-06T12:00:00+01:00", "value": 3}]},
    "IngestResult": {"accepted": 3, "duplicates": 0, "sampled_out": 0, "rejected": []},
}


def operation_id(path: str, handler_name: str) -> str:
    """`/api/auth/sign-in` + `sign_in` -> `authSignIn`; `/healthz` + `healthz` -> `healthz`."""
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    context = (
        parts[1] if parts and parts[0] == "api" and len(parts) > 1 else parts[0] if parts else ""
    )
    words = [w for w in re.split(r"[^A-Za-z0-9]+", handler_name) if w]
    context_words = [w for w in re.split(r"[^A-Za-z0-9]+", context) if w]
    if context_words and words[: len(context_words)] != context_words:
        words = context_words + words
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])


def _handlers(app: Litestar) -> Iterator[tuple[str, str, Any]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                yield route.path_format, method.lower(), handler


def _auth(handler: Any) -> str | None:
    names = set(handler.parsed_fn_signature.parameters)
    if "principal" in names:
        return "required"
    if "maybe_principal" in names:
        return "optional"
    return None


def complete_for_clients(document: OpenAPI, app: Litestar) -> None:
    paths = document.paths or {}
    seen: set[str] = set()
    response_refs: set[str] = set()
    request_refs: set[str] = set()
    for path, method, handler in _handlers(app):
        item = paths.get(path)
        operation: Operation | None = getattr(item, method, None) if item else None
        if operation is None:
            continue
        op_id = operation_id(path, handler.handler_name)
        if op_id in seen:
            op_id = f"{op_id}{method.capitalize()}"
        seen.add(op_id)
        operation.operation_id = op_id
        auth = _auth(handler)
        if auth == "required":
            operation.security = [{BEARER: []}]
        elif auth == "optional":
            operation.security = [{BEARER: []}, {}]
        for parameter in operation.parameters or []:
            if isinstance(parameter, Parameter):
                _enum_parameter(path, parameter)
        for status, response in (operation.responses or {}).items():
            if not isinstance(response, Response):
                continue
            if path.startswith("/api/"):
                response.headers = {**_RATE_LIMIT_HEADERS, **(response.headers or {})}
            if status.startswith("2"):
                for media in (response.content or {}).values():
                    response_refs.update(_refs(media.schema))
        body = operation.request_body
        if body is not None and not isinstance(body, Reference):
            for media in (body.content or {}).values():
                request_refs.update(_refs(media.schema))
    _complete_schemas(document, response_refs, request_refs)


def _refs(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, Reference):
        found.add(schema.ref.rsplit("/", 1)[-1])
    elif isinstance(schema, Schema):
        for child in (schema.items, *(schema.properties or {}).values(), *(schema.one_of or [])):
            if child is not None:
                found |= _refs(child)
    return found


def _complete_schemas(document: OpenAPI, response_refs: set[str], request_refs: set[str]) -> None:
    components = document.components
    schemas: dict[str, Any] = (
        (components.schemas or {}) if components and not isinstance(components, list) else {}
    )
    # Response schemas and the schemas they contain: every property is always sent.
    pending, closure = list(response_refs), set()
    while pending:
        name = pending.pop()
        if name in closure or name not in schemas:
            continue
        closure.add(name)
        pending.extend(_refs(schemas[name]))
    for name, schema in schemas.items():
        if not isinstance(schema, Schema):
            continue
        if name in closure and name not in request_refs and schema.properties:
            schema.required = sorted(schema.properties)
        for prop_name, prop in (schema.properties or {}).items():
            if (name, prop_name) in _INSTANTS and isinstance(prop, Schema):
                prop.format = OpenAPIFormat.DATE_TIME
        role = (schema.properties or {}).get("role")
        if name == "User" and isinstance(role, Schema):
            role.enum = list(_ROLES)
        if name in _EXAMPLES and not schema.examples and schema.properties:
            example = _EXAMPLES[name]
            schema.examples = [{k: v for k, v in example.items() if k in schema.properties}]


def _enum_parameter(path: str, parameter: Parameter) -> None:
    if not path.startswith("/api/dashboard/") or parameter.param_in != "query":
        return
    values = {
        "metric": list(METRICS),
        "granularity": _GRANULARITIES,
        "dimension": list(DIMENSIONS),
        "sort": list(SORTS),
    }.get(parameter.name)
    schema = parameter.schema
    if values is None or not isinstance(schema, Schema):
        return
    if schema.one_of:  # `str | None`: the string alternative gets the enum
        for option in schema.one_of:
            if isinstance(option, Schema) and option.type == OpenAPIType.STRING:
                option.enum = list(values)
    else:
        schema.enum = list(values)


def main() -> None:
    """Print the document as `GET /schema/openapi.json` serves it (no database needed): the
    web app generates its API types from it (`npm run api-types` in frontend/)."""
    from lufy.web.app import create_app  # a cycle: lufy.web.app imports this module

    settings = load_settings(LUFY_ENV="test", JWT_SECRET="openapi-document-only-" + "x" * 16)
    document = create_app(bootstrap(settings)).openapi_schema.to_schema()
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
