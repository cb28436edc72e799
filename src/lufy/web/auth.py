"""Who is calling: the Principal and the dependencies handlers use to require one.

The authentication layer (accounts) verifies the bearer token and stores the Principal in
`request.state.principal`; handlers receive it through these dependencies.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from lufy.errors import AuthenticationError
from lufy.identity import Principal, require_role

__all__ = ["Principal", "provide_optional_principal", "provide_principal", "require_role"]


async def provide_optional_principal(request: Request[Any, Any, Any]) -> Principal | None:
    principal = getattr(request.state, "principal", None)
    return principal if isinstance(principal, Principal) else None


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = await provide_optional_principal(request)
    if principal is None:
        # The authentication middleware says why a presented token was refused.
        reason = getattr(request.state, "auth_error", None)
        raise AuthenticationError(reason or "a valid bearer access token is required")
    return principal
