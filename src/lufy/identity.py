"""Who is acting, and on whose request: the Principal and the per-request ids.

Core, so that domain services can take a Principal and stamp event metadata without importing
the web layer; `lufy.web.auth` fills the Principal from a bearer token and
`lufy.web.context` sets the ids for each HTTP request (jobs and the CLI leave them unset).

`event_metadata` is the one place the metadata of an appended event is put together:
`EventMetadata(**event_metadata(actor, causation_id=...))`. It returns the fields rather than
the `EventMetadata` itself because the core sits below the event store and may not import it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from enum import Enum
from typing import Any, Literal, TypedDict

import msgspec

from lufy.errors import PermissionDeniedError

__all__ = [
    "AMBIENT",
    "MetadataFields",
    "Principal",
    "correlation_id",
    "correlation_id_var",
    "event_metadata",
    "ids_for_headers",
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


# fullmatch: `$` also matches before a trailing newline, which would let one through.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            text = value.decode("latin-1")
            return text if _SAFE_ID.fullmatch(text) else None
    return None


def ids_for_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, str]:
    """A fresh request id and the correlation id for a request with these (ASGI) headers: the
    caller's `X-Correlation-Id`, else its `X-Request-Id`, else the fresh id (each only if it is
    a safe token). Used by `lufy.web.context`'s middleware and by handlers answered in front of
    it (`lufy.media.edge_asgi`)."""
    headers = list(headers)
    rid = uuid.uuid4().hex
    cid = _header(headers, b"x-correlation-id") or _header(headers, b"x-request-id") or rid
    return rid, cid


class _Ambient(Enum):
    AMBIENT = "ambient"


# "The id of the request being served": the default of `event_metadata`'s id parameters.
AMBIENT = _Ambient.AMBIENT


class MetadataFields(TypedDict):
    """The keyword arguments of `lufy.eventstore.EventMetadata`, as `event_metadata` fills them."""

    correlation_id: str | None
    causation_id: str | None
    actor_id: str | None
    request_id: str | None
    weight: float | None
    extra: dict[str, Any] | None


def event_metadata(
    actor: uuid.UUID | str | None = None,
    *,
    causation_id: str | None = None,
    correlation: str | Literal[_Ambient.AMBIENT] | None = AMBIENT,
    request: str | Literal[_Ambient.AMBIENT] | None = AMBIENT,
    weight: float | None = None,
    extra: dict[str, Any] | None = None,
) -> MetadataFields:
    """The metadata of an event appended now on behalf of `actor`: the correlation and request
    ids of the request being served (None outside one) unless given, the causing event or
    message, and an analytics `weight` or `extra` fields when the caller has them."""
    return MetadataFields(
        correlation_id=correlation_id_var.get() if correlation is AMBIENT else correlation,
        causation_id=causation_id,
        actor_id=None if actor is None else str(actor),
        request_id=request_id_var.get() if request is AMBIENT else request,
        weight=weight,
        extra=extra,
    )
