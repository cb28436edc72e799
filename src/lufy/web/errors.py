"""Every error leaves as RFC 9457 problem+json; LufyError subclasses are mapped once, here."""

from __future__ import annotations

from typing import Any

import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from lufy.errors import LufyError, RateLimitedError, ServiceUnavailableError
from lufy.logs import get_logger

__all__ = ["exception_handlers", "problem"]

PROBLEM_JSON = "application/problem+json"
_log = get_logger(__name__)


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "status": status,
        "title": title,
        "detail": detail,
        **extra,
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _lufy_error(_: Request[Any, Any, Any], exc: LufyError) -> Response[dict[str, Any]]:
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError | ServiceUnavailableError):
        headers["Retry-After"] = str(exc.retry_after)
    return problem(exc.status, exc.title, exc.detail, headers=headers or None, **exc.extra)


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    detail = exc.detail or "request is invalid"
    if errors:
        parts = []
        for err in errors[:5]:
            if isinstance(err, dict):
                where = err.get("key") or err.get("source") or ""
                parts.append(f"{where}: {err.get('message', '')}".strip(": "))
        if parts:
            detail = "; ".join(parts)
    return problem(400, "Invalid request", detail, errors=errors)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    title = {
        400: "Bad request",
        401: "Authentication required",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        413: "Payload too large",
        415: "Unsupported media type",
    }.get(status, "Error")
    headers = dict(exc.headers or {})
    return problem(status, title, str(exc.detail), headers=headers or None)


def _database_down(_: Request[Any, Any, Any], exc: psycopg.OperationalError) -> Response[Any]:
    _log.warning("database unavailable", error=str(exc).strip().splitlines()[:1])
    return problem(
        503,
        "Service unavailable",
        "database unavailable, retry shortly",
        headers={"Retry-After": "2"},
    )


def _bad_value(_: Request[Any, Any, Any], exc: psycopg.DataError) -> Response[dict[str, Any]]:
    # A value PostgreSQL cannot store (a NUL character in text, a number out of range) that
    # validation let through: the transaction rolled back, so nothing was written.
    message = (exc.diag.message_primary or "invalid value").strip()
    _log.info("value refused by the database", error=message)
    return problem(400, "Invalid value", f"a value in the request cannot be stored: {message}")


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[dict[str, Any]]:
    # msgspec gives up on a JSON body nested thousands deep ("... while deserializing an
    # object"): the client's mistake. Any other RecursionError is ours.
    if "deserializing" not in str(exc):
        return _unexpected(request, exc)
    return problem(400, "Malformed request body", "the JSON body is nested too deeply")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    _log.exception("unhandled error", path=request.url.path)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal server error",
        "an unexpected error occurred; it has been logged",
    )


exception_handlers: dict[Any, Any] = {
    LufyError: _lufy_error,
    ValidationException: _validation,
    HTTPException: _http,
    psycopg.OperationalError: _database_down,
    psycopg.DataError: _bad_value,
    RecursionError: _too_deep,
    Exception: _unexpected,
}

_ = MediaType  # re-exported for handlers that build their own responses
