"""A sign-up before the projector ever ran is still mailed: migrate places new reactors."""

from __future__ import annotations

from typing import Any

from lufy.bootstrap import Container
from lufy.eventstore import Checkpoint, EventStore
from lufy.projections.discovery import async_projections


async def test_every_reactor_has_a_checkpoint_after_migrate(admin_conn: Any) -> None:
    reactors = [p.name for p in async_projections() if getattr(p, "start_at_head", False)]
    assert reactors, "expected at least one reactor (e-mail, media processing)"
    cur = await admin_conn.execute("SELECT name FROM lufy.checkpoints")
    placed = {row[0] for row in await cur.fetchall()}
    assert set(reactors) <= placed


async def test_an_event_appended_before_the_projector_starts_is_after_the_reactor_checkpoint(
    container: Container, admin_conn: Any, store: EventStore
) -> None:
    from tests.helpers.accounts import create_user

    await create_user(container, role="listener")
    cur = await admin_conn.execute(
        "SELECT transaction_id::text::bigint, global_position FROM lufy.checkpoints "
        "WHERE name = 'accounts_emails'"
    )
    row = await cur.fetchone()
    assert row is not None
    page = await store.read_all(admin_conn, Checkpoint(int(row[0]), int(row[1])))
    types = {event.type for event in page.events}
    assert "accounts.user_registered" in types
