"""Account errors, each a LufyError with the HTTP status it maps to."""

from __future__ import annotations

from lufy.errors import AuthenticationError, ConflictError, LufyError, ValidationFailedError

__all__ = [
    "EmailTakenError",
    "InvalidCredentialsError",
    "InvalidTokenError",
    "WeakPasswordError",
]


class InvalidCredentialsError(AuthenticationError):
    title = "Invalid credentials"


class InvalidTokenError(LufyError):
    """An e-mailed or refresh token that is unknown, expired, already used or forged."""

    status = 400
    title = "Invalid or expired token"


class EmailTakenError(ConflictError):
    title = "E-mail address already registered"


class WeakPasswordError(ValidationFailedError):
    title = "Password not accepted"
