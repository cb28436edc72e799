"""API shapes of /api/auth (CONTRACT.md section 3). Request bodies reject unknown fields."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "Accepted",
    "AuthTokens",
    "ChangePassword",
    "CurrentSession",
    "EmailRequest",
    "EraseAccount",
    "RefreshRequest",
    "ResetPassword",
    "RevokedSessions",
    "SessionInfo",
    "SessionList",
    "SignIn",
    "SignUp",
    "TokenRequest",
    "User",
    "UserEnvelope",
]

# Lengths are bounded here so that nothing huge reaches hashing; the password policy itself
# (8..128, not a common password) is checked by the service, with a message that says which.
Email = Annotated[str, Meta(min_length=1, max_length=320, description="e-mail address")]
Password = Annotated[str, Meta(min_length=1, max_length=1024)]
Token = Annotated[str, Meta(min_length=1, max_length=512, description="token from the e-mail")]
DisplayName = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"\S")]


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class SignUp(_Body):
    email: Email
    password: Password
    display_name: DisplayName
    role: Literal["listener", "artist"] = "listener"


class SignIn(_Body):
    email: Email
    password: Password


class RefreshRequest(_Body):
    refresh_token: Token


class TokenRequest(_Body):
    token: Token


class EraseAccount(_Body):
    """The proof that the caller is the person: the password, or for an account without one,
    the token of a fresh sign-in link (POST magic-link)."""

    password: Password | None = None
    token: Token | None = None


class EmailRequest(_Body):
    email: Email


class ResetPassword(_Body):
    token: Token
    password: Password


class ChangePassword(_Body):
    current_password: Password
    new_password: Password


class User(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    email: str
    display_name: str
    role: str
    email_verified: bool


class UserEnvelope(msgspec.Struct, kw_only=True):
    user: User


class AuthTokens(msgspec.Struct, kw_only=True):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    user: User


class SessionInfo(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    device: str
    ip_prefix: str | None
    method: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool


class CurrentSession(msgspec.Struct, kw_only=True):
    user: User
    session: SessionInfo


class SessionList(msgspec.Struct, kw_only=True):
    sessions: list[SessionInfo]


class RevokedSessions(msgspec.Struct, kw_only=True):
    revoked: int


class Accepted(msgspec.Struct, kw_only=True):
    status: Literal["accepted"] = "accepted"
    detail: str
