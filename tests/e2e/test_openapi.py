"""The OpenAPI document describes every route: summary, success schema, errors with examples."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from lufy.bootstrap import bootstrap
from lufy.settings import Settings
from lufy.web.app import create_app

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
async def document(settings: Settings) -> dict[str, Any]:
    async with AsyncTestClient(app=create_app(bootstrap(settings))) as client:
        response = await client.get("/schema/openapi.json")
        assert response.status_code == 200
        rendered = await client.get("/schema")
        assert rendered.status_code == 200
        assert "text/html" in rendered.headers["content-type"]
        return response.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


async def test_the_document_lists_the_contract_routes(document: dict[str, Any]) -> None:
    paths = set(document["paths"])
    for path in ("/healthz", "/readyz", "/metrics"):
        assert path in paths
    # Every context that has landed contributes its routes; the API root has many.
    assert len(operations(document)) >= 3


async def test_every_operation_has_a_summary_and_a_documented_success(
    document: dict[str, Any],
) -> None:
    missing = []
    for path, method, operation in operations(document):
        if not operation.get("summary"):
            missing.append(f"{method.upper()} {path}: no summary")
        successes = [code for code in operation["responses"] if code.startswith(("2", "3"))]
        if not successes:
            missing.append(f"{method.upper()} {path}: no success response")
    assert missing == []


async def test_every_error_response_is_problem_json_with_an_example(
    document: dict[str, Any],
) -> None:
    wrong = []
    for path, method, operation in operations(document):
        for code, response in operation["responses"].items():
            if not code.startswith(("4", "5")) or (path, code) == ("/readyz", "503"):
                continue  # /readyz answers 503 with its usual body, saying what is down
            content = response.get("content", {})
            problem = content.get("application/problem+json")
            if problem is None:
                wrong.append(f"{method.upper()} {path} {code}: not problem+json")
            elif not (problem.get("examples") or problem.get("example")):
                wrong.append(f"{method.upper()} {path} {code}: no example")
    assert wrong == []


async def test_api_routes_document_validation_auth_rate_limit_and_unavailable(
    document: dict[str, Any],
) -> None:
    lacking = []
    for path, method, operation in operations(document):
        if not path.startswith("/api/"):
            continue
        for code in ("400", "401", "429", "503"):
            if code not in operation["responses"]:
                lacking.append(f"{method.upper()} {path}: {code}")
        if "{" in path and "404" not in operation["responses"]:
            lacking.append(f"{method.upper()} {path}: 404")
    assert lacking == []


async def test_rate_limited_and_unavailable_answers_document_retry_after(
    document: dict[str, Any],
) -> None:
    for path, method, operation in operations(document):
        for code in ("429", "503"):
            response = operation["responses"].get(code)
            if response is not None and path != "/readyz":
                assert "Retry-After" in response.get("headers", {}), f"{method} {path} {code}"


async def test_json_request_bodies_have_a_schema(document: dict[str, Any]) -> None:
    lacking = []
    for path, method, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        for media, content in body.get("content", {}).items():
            if "json" in media and "schema" not in content:
                lacking.append(f"{method.upper()} {path} {media}")
    assert lacking == []


async def test_the_problem_schema_is_a_component(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "status", "title", "detail"}
