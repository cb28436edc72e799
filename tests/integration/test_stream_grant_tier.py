"""The grant in one round trip: `lufy.issue_stream_grant` (sql/0821) decides, appends and reads
the listener's subscriptions in one statement, and the tier is worked out of them in Python
(`lufy.catalog.grants.TierRule`); what a failed or repeated attempt does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lufy.bootstrap import Container
from lufy.catalog.events import STREAM_AUTH_STREAM
from lufy.catalog.grants import GrantConnections, Subscription, TierRule, record_grant
from lufy.catalog.service import everyone_premium
from lufy.errors import ConflictError
from lufy.eventstore import NewEvent
from lufy.identity import Principal
from lufy.payments.entitlements import Entitlements
from tests.helpers.accounts import create_user
from tests.helpers.grants import grant_event, ready_track


class Recorder:
    """A TierRule that notes the subscriptions it is given."""

    def __init__(self, *, subscriptions: bool = True) -> None:
        self.subscriptions = subscriptions
        self.seen: list[list[Subscription]] = []

    def tier_of(self, subscriptions: Sequence[Subscription], now: datetime) -> Any:
        self.seen.append(list(subscriptions))
        return "free"


async def _subscribe(
    admin_conn: Any, user_id: uuid.UUID, status: str, period_end: datetime, as_of: datetime
) -> None:
    await admin_conn.execute(
        "INSERT INTO lufy.payment_subscriptions (subscription_id, customer_id, user_id, status, "
        "current_period_end, as_of, as_of_rank, stripe_event_id) "
        "VALUES (%s, 'cus_x', %s, %s, %s, %s, 0, 'evt_x')",
        [f"sub_{uuid.uuid4().hex[:12]}", user_id, status, period_end, as_of],
    )


async def _events(admin_conn: Any, track_id: uuid.UUID) -> list[uuid.UUID]:
    cur = await admin_conn.execute(
        "SELECT event_id FROM lufy.events WHERE stream_type = %s AND stream_id = %s "
        "ORDER BY global_position",
        [STREAM_AUTH_STREAM, str(track_id)],
    )
    return [row[0] for row in await cur.fetchall()]


async def _record(
    container: Container,
    grants: GrantConnections,
    rule: Any,
    principal: Principal | None,
    track_id: uuid.UUID,
    grant: NewEvent,
) -> Any:
    codec = container.store.codec
    return await record_grant(grants, codec, rule, principal, STREAM_AUTH_STREAM, track_id, grant)


async def test_the_statement_returns_the_listeners_own_subscriptions_newest_first(
    container: Container, admin_conn: Any
) -> None:
    listener = await create_user(container, role="listener")
    other = await create_user(container, role="listener")
    principal = Principal(user_id=listener.id, role="listener", session_id=listener.session_id)
    track_id = await ready_track(container, admin_conn)
    now = datetime.now(UTC).replace(microsecond=0)
    ended, paid = now - timedelta(days=2), now + timedelta(days=20)
    await _subscribe(admin_conn, listener.id, "canceled", ended, now - timedelta(days=40))
    await _subscribe(admin_conn, listener.id, "active", paid, now - timedelta(days=1))
    await _subscribe(admin_conn, other.id, "trialing", paid, now)  # RLS: not theirs
    rule, blind = Recorder(), Recorder(subscriptions=False)
    assert isinstance(rule, TierRule)
    assert isinstance(everyone_premium, TierRule)
    assert isinstance(Entitlements(3), TierRule)
    grants = GrantConnections(container.db, max_size=1)
    try:
        assert await _record(
            container, grants, rule, principal, track_id, grant_event(track_id)
        ) == ("free")
        assert rule.seen == [[("active", paid, None), ("canceled", ended, None)]]
        # The payments context's rule, given the same rows: the active subscription counts.
        entitlements = Entitlements(3)
        assert await _record(
            container, grants, entitlements, principal, track_id, grant_event(track_id)
        ) == ("premium")
        assert await _record(
            container, grants, everyone_premium, principal, track_id, grant_event(track_id)
        ) == ("premium")
        # A rule that needs none gets none; an anonymous listener has none.
        await _record(container, grants, blind, principal, track_id, grant_event(track_id))
        await _record(container, grants, rule, None, track_id, grant_event(track_id))
        assert blind.seen == [[]]
        assert rule.seen[1:] == [[]]
        # Refused: nothing recorded, and no tier worked out.
        await admin_conn.execute(
            "UPDATE lufy.tracks SET status = 'processing' WHERE id = %s", [track_id]
        )
        with pytest.raises(ConflictError):
            await _record(container, grants, rule, principal, track_id, grant_event(track_id))
        assert len(rule.seen) == 2
        # Nothing of the grant's transaction stays on the pooled connection.
        async with grants.connection() as conn:
            cur = await conn.execute(
                "SELECT current_setting('synchronous_commit'), "
                "coalesce(current_setting('app.current_user_id', true), '')"
            )
            assert await cur.fetchone() == ("on", "")
    finally:
        await grants.aclose()
    assert len(await _events(admin_conn, track_id)) == 5


async def test_a_grant_sent_twice_is_recorded_once(container: Container, admin_conn: Any) -> None:
    # What a retry after a lost answer does: the statement committed, the retry sends the same
    # event id, and the append answers it as a replay.
    track_id = await ready_track(container, admin_conn)
    grants = GrantConnections(container.db, max_size=1)
    grant = grant_event(track_id)
    try:
        for _ in range(2):
            assert await _record(container, grants, everyone_premium, None, track_id, grant) == (
                "premium"
            )
    finally:
        await grants.aclose()
    assert await _events(admin_conn, track_id) == [grant.event_id]


async def test_a_broken_connection_is_retried_once_with_the_same_event_id(
    container: Container, admin_conn: Any
) -> None:
    track_id = await ready_track(container, admin_conn)
    listener = await create_user(container, role="listener")
    principal = Principal(user_id=listener.id, role="listener", session_id=listener.session_id)
    grants = GrantConnections(container.db, max_size=1)
    first, second = grant_event(track_id), grant_event(track_id)
    try:
        await _record(container, grants, Entitlements(3), principal, track_id, first)
        async with grants.connection() as conn:
            pid = conn.info.backend_pid
        await admin_conn.execute("SELECT pg_terminate_backend(%s)", [pid])
        tier = await _record(container, grants, Entitlements(3), principal, track_id, second)
        assert tier == "free"
        async with grants.connection() as conn:
            assert conn.info.backend_pid != pid  # a new connection answered
    finally:
        await grants.aclose()
    assert await _events(admin_conn, track_id) == [first.event_id, second.event_id]
