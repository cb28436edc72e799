"""Accounts for other contexts' tests: a verified user of a role, signed in, in one call.

    from tests.helpers.accounts import create_user, auth_headers

    artist = await create_user(container, role="artist")
    response = await client.get("/api/music/tracks", headers=artist.headers)
    # artist.id is the user id (= the artist id), artist.access_token a 15-minute JWT

It goes through AccountService (the same events and inline read models as HTTP sign-up and
sign-in), so the token passes the authentication middleware of `create_app(container)`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lufy.accounts.clients import ClientInfo
from lufy.accounts.service import accounts_service
from lufy.bootstrap import Container

__all__ = ["DEFAULT_PASSWORD", "TestUser", "auth_headers", "create_user"]

DEFAULT_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TestUser:
    __test__ = False  # not a pytest test class

    id: uuid.UUID
    email: str
    password: str
    role: str
    display_name: str
    access_token: str
    refresh_token: str
    session_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return auth_headers(self.access_token)


def auth_headers(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def create_user(
    container: Container,
    *,
    role: str = "listener",
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    display_name: str | None = None,
    verified: bool = True,
) -> TestUser:
    """Register a user (verified unless told otherwise) and sign them in."""
    service = accounts_service(container)
    email = email or f"{role}-{uuid.uuid4().hex[:12]}@example.com"
    user = await service.register(
        email=email,
        password=password,
        role=role,
        display_name=display_name or f"Test {role.title()}",
        verified=verified,
        via="cli",
    )
    tokens = await service.sign_in(
        email=email, password=password, client=ClientInfo(user_agent="pytest", ip="127.0.0.1")
    )
    principal = service.access_tokens.verify(tokens.access_token)
    return TestUser(
        id=user.id,
        email=user.email,
        password=password,
        role=role,
        display_name=user.display_name,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        session_id=principal.session_id,
    )
