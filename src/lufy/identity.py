"""Who is acting, and on whose request: the Principal and the per-request ids.

Core, so that domain services can take a Principal and stamp event metadata without importing
the web layer; `lufy.web.auth` fills the Principal from a bearer token and
`lufy.web.context` sets the ids for each HTTP request (jobs and the CLI leave them unset).
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

import msgspec

from lufy.errors import PermissionDeniedError

__all__ = [
    "Principal",
    "correlation_id",
    "correlation_id_var",
    "request_id",
    "request_id_var",
    "require_role",
]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    role: str  # listener | artist | admin
    session_id: uuid.UUID

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def require_role(principal: Principal, *roles: str) -> Principal:
    if principal.role not in roles and not principal.is_admin:
        raise PermissionDeniedError(f"this action needs the role {' or '.join(roles)}")
    return principal


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def request_id() -> str | None:
    """Lufy's id of the HTTP request being served (None outside a request)."""
    return request_id_var.get()


def correlation_id() -> str | None:
    """The caller's correlation id, or the request id (None outside a request)."""
    return correlation_id_var.get()
