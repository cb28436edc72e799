"""Fake streams: only sessions backed by a stream grant (or imported) are streams and listeners.

Each test sends playback events the way a player does (`POST /api/analytics/events`, through
the same `Ingestor`), with the grant ids an attacker could try, and reads what the projection
decided in `playback_sessions` and in the rollups the dashboard reads.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from lufy.analytics.dashboard import Dashboard, Query, Scope
from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.analytics.projections import AnalyticsProjection
from lufy.projections.rebuild import rebuild
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track, issue_grant


def playback(
    session: str,
    track: uuid.UUID,
    *,
    grant: uuid.UUID | None,
    listened_ms: int = 45_000,
    anonymous_id: str = "anon-1",
    kind: str = "playback.progress",
    ago: timedelta = timedelta(minutes=1),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "occurred_at": (datetime.now(UTC) - ago).isoformat(),
        "session_id": session,
        "anonymous_id": anonymous_id,
        "track_id": str(track),
        "listened_ms": listened_ms,
    }
    if grant is not None:
        body["grant_id"] = str(grant)
    return body


class World:
    def __init__(self, db, store, artist: uuid.UUID, tracks: list[uuid.UUID]) -> None:
        self.db = db
        self.store = store
        self.artist = artist
        self.tracks = tracks
        self.ingestor = Ingestor(db, store, sample_rate=1.0)
        self.projector = LocalProjector(db, store)

    async def send(self, *events: dict[str, Any], user_id: uuid.UUID | None = None) -> None:
        result = await self.ingestor.ingest(list(events), IngestContext(user_id=user_id))
        assert result.rejected == []
        assert result.accepted == len(events)
        await self.projector.run()

    async def grant(self, track: uuid.UUID, **kwargs: Any) -> uuid.UUID:
        return await issue_grant(self.db, self.store, track, **kwargs)

    async def sessions(self) -> dict[str, tuple[bool, bool]]:
        """session_id -> (verified, is_stream)."""
        async with self.db.transaction(role="system") as conn:
            cur = await conn.execute(
                "SELECT session_id, verified, is_stream FROM playback_sessions"
            )
            return {r[0]: (r[1], r[2]) for r in await cur.fetchall()}

    async def totals(self) -> tuple[float, float, float]:
        """(streams, sessions started, listen seconds) over the rollups."""
        async with self.db.transaction(role="system") as conn:
            cur = await conn.execute(
                "SELECT coalesce(sum(streams), 0), coalesce(sum(starts), 0), "
                "coalesce(sum(listen_ms), 0) / 1000 FROM track_rollup_15m"
            )
            row = await cur.fetchone()
        assert row is not None
        return (row[0], row[1], row[2])

    async def overview(self) -> Any:
        scope = Scope(self.artist, "artist", self.artist)
        return await Dashboard(self.db).overview(scope, Query(range="7d"))


async def world(db, store, admin_conn, tracks: int = 2) -> World:
    artist = await insert_artist(admin_conn)
    return World(db, store, artist, [await insert_track(admin_conn, artist) for _ in range(tracks)])


async def test_a_session_that_presents_its_own_grant_is_a_stream_and_a_listener(
    db, store, admin_conn
) -> None:
    w = await world(db, store, admin_conn)
    grant = await w.grant(w.tracks[0])
    await w.send(playback("s-1", w.tracks[0], grant=grant))
    assert await w.sessions() == {"s-1": (True, True)}
    overview = await w.overview()
    assert (overview.streams, overview.listeners) == (1, 1)


async def test_a_forged_grant_id_makes_no_stream_and_no_listener(db, store, admin_conn) -> None:
    w = await world(db, store, admin_conn)
    await w.grant(w.tracks[0])  # a real grant exists, but not this one
    await w.send(
        playback("s-forged", w.tracks[0], grant=uuid.uuid4()),
        playback("s-none", w.tracks[0], grant=None, anonymous_id="anon-2"),
    )
    assert await w.sessions() == {"s-forged": (False, False), "s-none": (False, False)}
    overview = await w.overview()
    assert (overview.streams, overview.listeners) == (0, 0)
    # Unverified sessions are kept and still count where the contract says they do.
    assert overview.listen_seconds == 90
    assert await w.totals() == (0, 2, 90)


async def test_a_grant_issued_for_another_track_does_not_verify_a_session(
    db, store, admin_conn
) -> None:
    w = await world(db, store, admin_conn)
    other_track_grant = await w.grant(w.tracks[1])
    await w.send(playback("s-1", w.tracks[0], grant=other_track_grant))
    assert await w.sessions() == {"s-1": (False, False)}
    # The grant was not used up by the wrong track: its own track's session still verifies.
    await w.send(playback("s-2", w.tracks[1], grant=other_track_grant, anonymous_id="anon-2"))
    assert (await w.sessions())["s-2"] == (True, True)


async def test_a_grant_reused_by_many_sessions_verifies_only_the_first(
    db, store, admin_conn
) -> None:
    w = await world(db, store, admin_conn)
    grant = await w.grant(w.tracks[0])
    await w.send(playback("s-first", w.tracks[0], grant=grant))
    # Fifty more sessions (new anonymous listeners, as a stream farm would send) in one batch.
    await w.send(
        *(
            playback(f"s-copy-{i}", w.tracks[0], grant=grant, anonymous_id=f"farm-{i}")
            for i in range(50)
        )
    )
    sessions = await w.sessions()
    assert sessions.pop("s-first") == (True, True)
    assert set(sessions.values()) == {(False, False)}
    assert len(sessions) == 50
    overview = await w.overview()
    assert (overview.streams, overview.listeners) == (1, 1)
    # More events of the first session keep it verified (it holds the grant).
    await w.send(playback("s-first", w.tracks[0], grant=grant, listened_ms=60_000))
    assert (await w.sessions())["s-first"] == (True, True)


async def test_within_one_batch_the_earliest_session_in_the_log_claims_the_grant(
    db, store, admin_conn
) -> None:
    w = await world(db, store, admin_conn)
    grant = await w.grant(w.tracks[0])
    # "s-b" sorts after "s-a" but comes first in the log.
    await w.send(
        playback("s-b", w.tracks[0], grant=grant, anonymous_id="anon-b"),
        playback("s-a", w.tracks[0], grant=grant, anonymous_id="anon-a"),
    )
    assert await w.sessions() == {"s-b": (True, True), "s-a": (False, False)}


async def test_listened_ms_larger_than_the_time_since_the_grant_is_not_a_stream(
    db, store, admin_conn
) -> None:
    w = await world(db, store, admin_conn)
    fresh = await w.grant(w.tracks[0], at=datetime.now(UTC) - timedelta(seconds=5))
    # 45 s listened on a grant issued 5 s ago: impossible.
    await w.send(playback("s-fast", w.tracks[0], grant=fresh))
    assert await w.sessions() == {"s-fast": (False, False)}

    # A session verified so far loses it when one event claims more than the time elapsed.
    old = await w.grant(w.tracks[0], at=datetime.now(UTC) - timedelta(minutes=2))
    await w.send(playback("s-ok", w.tracks[0], grant=old, anonymous_id="anon-2"))
    assert (await w.sessions())["s-ok"] == (True, True)
    assert (await w.totals())[0] == 1
    await w.send(
        playback("s-ok", w.tracks[0], grant=old, anonymous_id="anon-2", listened_ms=3_600_000)
    )
    assert (await w.sessions())["s-ok"] == (False, False)
    assert (await w.totals())[0] == 0


async def test_a_grant_issued_to_one_listener_does_not_verify_another_listener(
    db, store, admin_conn
) -> None:
    w = await world(db, store, admin_conn)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alices = await w.grant(w.tracks[0], listener_id=alice)
    anonymous = await w.grant(w.tracks[0])
    await w.send(playback("s-bob", w.tracks[0], grant=alices), user_id=bob)
    await w.send(playback("s-anon", w.tracks[0], grant=alices, anonymous_id="anon-9"))
    # A signed-in listener must present a grant issued to them, not an anonymous one.
    await w.send(playback("s-bob-2", w.tracks[0], grant=anonymous), user_id=bob)
    assert await w.sessions() == {
        "s-bob": (False, False),
        "s-anon": (False, False),
        "s-bob-2": (False, False),
    }
    await w.send(playback("s-alice", w.tracks[0], grant=alices), user_id=alice)
    assert (await w.sessions())["s-alice"] == (True, True)


async def test_imported_sessions_are_verified_without_a_grant_and_clients_cannot_claim_it(
    db, store, admin_conn
) -> None:
    w = await world(db, store, admin_conn)
    imported = playback("s-imported", w.tracks[0], grant=None, ago=timedelta(days=30))
    result = await w.ingestor.ingest(
        [imported], IngestContext(historical=True), event_type=ImportedEvent
    )
    assert result.accepted == 1
    # A client that says it was imported is not believed (the field is not part of the API).
    await w.send({**playback("s-client", w.tracks[0], grant=None), "imported": True})
    await w.projector.run()
    assert await w.sessions() == {"s-imported": (True, True), "s-client": (False, False)}


async def test_a_rebuild_decides_every_session_the_same_way(
    db, store, admin_conn, settings
) -> None:
    w = await world(db, store, admin_conn)
    grant = await w.grant(w.tracks[0])
    fresh = await w.grant(w.tracks[1], at=datetime.now(UTC) - timedelta(seconds=5))
    await w.send(
        playback("s-1", w.tracks[0], grant=grant),
        playback("s-2", w.tracks[0], grant=grant, anonymous_id="anon-2"),
        playback("s-3", w.tracks[1], grant=fresh, anonymous_id="anon-3"),
        playback("s-4", w.tracks[1], grant=uuid.uuid4(), anonymous_id="anon-4"),
    )
    await w.send(playback("s-5", w.tracks[0], grant=grant, anonymous_id="anon-5"))
    before = await w.sessions()
    assert sorted(k for k, (verified, _) in before.items() if verified) == ["s-1"]
    result = await rebuild(settings.DATABASE_URL, AnalyticsProjection(), batch_size=2, compare=True)
    assert result.swapped
    assert result.differences["playback_sessions"] == (0, 0)
    assert result.differences["stream_grants"] == (0, 0)
    assert await w.sessions() == before
