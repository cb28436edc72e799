"""How fast a revoked session's access token stops working, in this process and in another."""

from __future__ import annotations

import pytest

from lufy.accounts.access_tokens import InvalidAccessToken
from lufy.accounts.service import AccountService
from lufy.bootstrap import Container
from tests.helpers.accounts import create_user


async def test_revocation_is_immediate_here_and_bounded_by_the_cache_elsewhere(
    container: Container,
) -> None:
    here = container.accounts
    # A second API process: its own service and cache over the same database.
    elsewhere = AccountService(db=container.db, store=container.store, settings=container.settings)
    user = await create_user(container)
    assert (await elsewhere.authenticate(user.access_token)).session_id == user.session_id

    principal = await here.authenticate(user.access_token)
    await here.sign_out(principal)

    with pytest.raises(InvalidAccessToken, match="revoked"):
        await here.authenticate(user.access_token)
    # Still inside its 5-second window, the other process has not looked again...
    assert (await elsewhere.authenticate(user.access_token)).session_id == user.session_id
    # ...and once the window has passed (made zero here rather than waited for), it refuses.
    elsewhere.session_check_ttl = 0.0
    with pytest.raises(InvalidAccessToken, match="revoked"):
        await elsewhere.authenticate(user.access_token)
    # A session seen dead stays dead, whatever the window.
    elsewhere.session_check_ttl = 3600.0
    with pytest.raises(InvalidAccessToken, match="revoked"):
        await elsewhere.authenticate(user.access_token)
