"""The accounts read models are pure functions of the log: a rebuild gives the same rows."""

from __future__ import annotations

import pytest

from lufy.accounts.clients import ClientInfo
from lufy.accounts.projections import PROJECTIONS
from lufy.bootstrap import Container
from lufy.projections.rebuild import rebuild
from tests.helpers.accounts import create_user, last_token


@pytest.mark.parametrize("name", [p.name for p in PROJECTIONS])
async def test_rebuilding_an_accounts_projection_reproduces_the_live_rows(
    container: Container, name: str
) -> None:
    service = container.accounts
    client = ClientInfo(user_agent="curl/8.0", ip="198.51.100.7")
    ada = await create_user(container, email="ada@example.com", verified=False)
    await create_user(container, role="artist", email="bob@example.com")
    pair = await service.sign_in(email=ada.email, password=ada.password, client=client)
    rotated = await service.refresh(pair.refresh_token, client)
    with pytest.raises(Exception, match="revoked"):
        await service.refresh(pair.refresh_token, client)  # reuse: the session dies
    await service.forgot_password(ada.email)
    token = await last_token(container, ada.email, "Reset")
    await service.reset_password(token, "a completely new passphrase")
    await service.request_magic_link("bob@example.com")
    assert rotated.refresh_token

    projection = next(p for p in PROJECTIONS if p.name == name)
    result = await rebuild(
        container.settings.DATABASE_URL, projection, store=container.store, compare=True
    )
    assert result.events_applied > 0
    assert result.swapped
    assert set(result.differences) == set(projection.tables)
    assert all(diff == (0, 0) for diff in result.differences.values()), result.differences
