"""The OpenAPI document is good enough to generate a typed client from (the web app's
frontend/src/api/schema.d.ts is generated from it with openapi-typescript)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from lufy.bootstrap import bootstrap
from lufy.settings import Settings
from lufy.web.app import create_app
from lufy.web.openapi_clients import operation_id

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
async def document(settings: Settings) -> dict[str, Any]:
    async with AsyncTestClient(app=create_app(bootstrap(settings))) as client:
        response = await client.get("/schema/openapi.json")
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): item[method]
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    }


def test_operation_ids_are_the_context_and_the_handler_in_camel_case() -> None:
    assert operation_id("/api/auth/sign-in", "sign_in") == "authSignIn"
    assert operation_id("/api/rate-limit/status", "rate_limit_status") == "rateLimitStatus"
    assert operation_id("/api/music/tracks/{track_id}", "get_track") == "musicGetTrack"
    assert operation_id("/healthz", "healthz") == "healthz"


async def test_every_operation_has_a_unique_camel_case_operation_id(
    document: dict[str, Any],
) -> None:
    ids = [op["operationId"] for op in _operations(document).values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", i) for i in ids), ids
    ops = _operations(document)
    assert ops["get", "/api/dashboard/overview"]["operationId"] == "dashboardOverview"
    assert ops["post", "/api/auth/sign-in"]["operationId"] == "authSignIn"
    assert ops["get", "/api/music/tracks"]["operationId"] == "musicListTracks"


async def test_protected_operations_declare_the_bearer_token(document: dict[str, Any]) -> None:
    ops = _operations(document)
    for (_method, path), op in ops.items():
        if path.startswith("/api/dashboard/"):
            assert op["security"] == [{"BearerToken": []}], path
    assert ops["post", "/api/music/uploads"]["security"] == [{"BearerToken": []}]
    assert ops["delete", "/api/auth/sessions/{session_id}"]["security"] == [{"BearerToken": []}]
    # Signed in or not: the listener is the user when there is one.
    optional = [{"BearerToken": []}, {}]
    assert ops["post", "/api/analytics/events"]["security"] == optional
    assert ops["get", "/api/music/tracks/{track_id}/stream"]["security"] == optional
    assert "security" not in ops["post", "/api/auth/sign-in"]


async def test_fields_always_sent_are_required_in_responses_but_not_in_requests(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    for name in ("Overview", "Metrics", "Track", "User", "AuthTokens", "Point", "TrackRow"):
        assert set(schemas[name]["required"]) == set(schemas[name]["properties"]), name
    # A request body's defaulted field stays optional.
    assert "role" not in schemas["SignUp"]["required"]


async def test_enums_and_instants_are_typed(document: dict[str, Any]) -> None:
    ops = _operations(document)

    def enum_of(method: str, path: str, name: str) -> list[str]:
        param = next(p for p in ops[method, path]["parameters"] if p["name"] == name)
        schema = param["schema"]
        options = schema.get("oneOf", [schema])
        return next(o["enum"] for o in options if o.get("type") == "string")

    assert "streams" in enum_of("get", "/api/dashboard/timeseries", "metric")
    assert enum_of("get", "/api/dashboard/timeseries", "granularity") == [
        "hour",
        "day",
        "week",
        "month",
    ]
    assert enum_of("get", "/api/dashboard/breakdown", "dimension") == [
        "country",
        "device",
        "source",
    ]
    assert "streams" in enum_of("get", "/api/dashboard/tracks", "sort")
    schemas = document["components"]["schemas"]
    assert schemas["User"]["properties"]["role"]["enum"] == ["listener", "artist", "admin"]
    assert schemas["Point"]["properties"]["t"]["format"] == "date-time"
    assert schemas["Track"]["properties"]["created_at"]["format"] == "date-time"


async def test_main_responses_have_examples_that_fit_their_schema(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    for name in ("Overview", "TimeseriesResponse", "Track", "AuthTokens", "UploadTicket"):
        (example,) = schemas[name]["examples"]
        properties = schemas[name]["properties"]
        assert set(example) <= set(properties), name
        # The document leaves out null values: a missing key must be a nullable one.
        for missing in set(schemas[name]["required"]) - set(example):
            options = properties[missing].get("oneOf", [])
            assert {"type": "null"} in options, (name, missing)


async def test_every_api_response_documents_the_rate_limit_headers(
    document: dict[str, Any],
) -> None:
    for (method, path), op in _operations(document).items():
        if not path.startswith("/api/"):
            continue
        for status, response in op["responses"].items():
            headers = response.get("headers", {})
            assert {"RateLimit", "RateLimit-Policy"} <= set(headers), (method, path, status)
