"""/api/auth/account (erasure and export), listed among the /api/auth routes."""

from __future__ import annotations

from typing import Any

from litestar import delete, get
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Response
from litestar.status_codes import HTTP_202_ACCEPTED

from lufy.accounts.schemas import Accepted, EraseAccount
from lufy.bootstrap import Container
from lufy.privacy.erasure import forget
from lufy.privacy.export import export_person
from lufy.web.auth import Principal
from lufy.web.ratelimit import policies as limits
from lufy.web.ratelimit import rate_limited

__all__ = ["HANDLERS"]

_BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]


@rate_limited(limits.ACCOUNT_DELETE)
@delete(
    "/account",
    status_code=HTTP_202_ACCEPTED,
    summary="Erase the caller's account and personal data",
    description="Proof: {password}, or {token} of a fresh sign-in link for an account without "
    "a password. Personal data is crypto-shredded, sessions revoked, an artist's tracks and "
    "media deleted; aggregates stay.",
    security=_BEARER,
)
async def erase_account(
    data: JSONBody[EraseAccount],
    principal: NamedDependency[Principal],
    container: NamedDependency[Container],
) -> Accepted:
    await container.accounts.check_erasure_proof(
        principal, password=data.password, token=data.token
    )
    await forget(container, principal.user_id, via="account")
    return Accepted(detail="the account and its personal data have been erased")


@get(
    "/account/export",
    summary="Everything Lufy holds about the caller, as JSON",
    security=_BEARER,
)
async def export_account(
    principal: NamedDependency[Principal], container: NamedDependency[Container]
) -> Response[Any]:
    document = await export_person(container, principal.user_id)
    return Response(
        content=document,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="lufy-export.json"'},
    )


HANDLERS = [erase_account, export_account]
