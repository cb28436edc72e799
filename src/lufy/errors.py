"""One root error; each subclass carries the HTTP status it maps to (web/errors.py)."""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "ConcurrencyError",
    "ConflictError",
    "DuplicateEventError",
    "LufyError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "UnknownEventTypeError",
    "ValidationFailedError",
]


class LufyError(Exception):
    """Root of every error Lufy raises on purpose. `detail` is safe to show to a client."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class ValidationFailedError(LufyError):
    status = 422
    title = "Validation failed"


class UnknownEventTypeError(ValidationFailedError):
    title = "Unknown event type"


class AuthenticationError(LufyError):
    status = 401
    title = "Authentication required"


class PermissionDeniedError(LufyError):
    status = 403
    title = "Forbidden"


class NotFoundError(LufyError):
    status = 404
    title = "Not found"


class ConflictError(LufyError):
    status = 409
    title = "Conflict"


class ConcurrencyError(ConflictError):
    """The stream's version is not the one the writer expected; nothing was written."""

    title = "Concurrency conflict"


class DuplicateEventError(ConflictError):
    """An event id was re-used with a different payload."""

    title = "Event id already used"


class PayloadTooLargeError(LufyError):
    status = 413
    title = "Payload too large"


class RateLimitedError(LufyError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, extra: dict[str, Any] | None = None):
        super().__init__(detail, extra=extra)
        self.retry_after = retry_after


class ServiceUnavailableError(LufyError):
    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, extra: dict[str, Any] | None = None):
        super().__init__(detail, extra=extra)
        self.retry_after = retry_after
