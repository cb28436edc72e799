"""The analytics projection: late and out-of-order events land where the session started."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track


async def rollup(db) -> dict[datetime, tuple[float, float, float]]:
    async with db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT bucket, streams, starts, listen_ms FROM track_rollup_15m "
            "WHERE starts <> 0 OR streams <> 0 OR listen_ms <> 0"
        )
        return {r[0]: (r[1], r[2], r[3]) for r in await cur.fetchall()}


async def test_a_late_start_moves_the_session_to_its_bucket_and_a_late_progress_makes_a_stream(
    db, store, admin_conn
) -> None:
    track = await insert_track(admin_conn, await insert_artist(admin_conn))
    ingestor = Ingestor(db, store, sample_rate=1.0)
    projector = LocalProjector(db, store)
    start = datetime(2026, 11, 20, 10, 14, 50, tzinfo=UTC)

    def event(kind: str, at: datetime, ms: int) -> dict:
        return {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "occurred_at": at.isoformat(),
            "session_id": "s-late",
            "anonymous_id": "a-1",
            "track_id": str(track),
            "listened_ms": ms,
        }

    async def send(*events: dict) -> None:
        result = await ingestor.ingest(
            list(events), IngestContext(historical=True), event_type=ImportedEvent
        )
        assert result.accepted == len(events)
        await projector.run()

    # A progress event arrives first: the session seems to start in the 10:15 bucket.
    await send(event("playback.progress", start + timedelta(seconds=20), 20_000))
    assert await rollup(db) == {datetime(2026, 11, 20, 10, 15, tzinfo=UTC): (0, 1, 20_000)}
    # The started event, 20 s earlier, arrives late: the session moves to 10:00.
    await send(event("playback.started", start, 0))
    assert await rollup(db) == {datetime(2026, 11, 20, 10, 0, tzinfo=UTC): (0, 1, 20_000)}
    # A later progress makes it a stream, still counted where it started.
    await send(event("playback.progress", start + timedelta(seconds=45), 45_000))
    assert await rollup(db) == {datetime(2026, 11, 20, 10, 0, tzinfo=UTC): (1, 1, 45_000)}
    # An out-of-order smaller progress changes nothing (listened_ms is the largest reported).
    await send(event("playback.progress", start + timedelta(seconds=10), 10_000))
    assert await rollup(db) == {datetime(2026, 11, 20, 10, 0, tzinfo=UTC): (1, 1, 45_000)}


async def test_a_session_keeps_the_first_value_given_in_log_order_within_and_across_batches(
    db, store, admin_conn
) -> None:
    """Source, country, device and grant are the first value given, in log order, as if each
    event were folded in turn with `state.x or event.x` (an empty source counts as none)."""
    track = await insert_track(admin_conn, await insert_artist(admin_conn))
    ingestor = Ingestor(db, store, sample_rate=1.0)
    projector = LocalProjector(db, store)
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    # The first value given sorts last: `min` alone would pick the wrong one.
    grants = sorted(str(uuid.uuid4()) for _ in range(2))

    def event(session: str, n: int, **fields: object) -> dict:
        return {
            "event_id": str(uuid.uuid4()),
            "type": "playback.progress",
            "occurred_at": (at + timedelta(seconds=n)).isoformat(),
            "session_id": session,
            "anonymous_id": "a-1",
            "track_id": str(track),
            "listened_ms": n * 1000,
            **{k: v for k, v in fields.items() if v is not None},
        }

    batches = [
        [
            event("mixed", 1, source="", device="tv"),
            event("mixed", 2, source="search", country="US", grant_id=grants[1]),
            event("mixed", 3, source="radio", country="SE", device="mobile"),
            event("empty", 1, source=""),
            event("empty", 2, source=""),
            event("later", 1, source=""),
        ],
        [
            event("mixed", 4, source="album", country="BR", grant_id=grants[0]),
            event("later", 2),
            event("empty", 3, source="", device="tablet"),
        ],
    ]
    for batch in batches:
        result = await ingestor.ingest(
            batch, IngestContext(historical=True), event_type=ImportedEvent
        )
        assert result.accepted == len(batch)
        await projector.run()
    async with db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT session_id, source, country, device, grant_id::text FROM playback_sessions"
        )
        stored = {r[0]: r[1:] for r in await cur.fetchall()}
    assert stored == {
        "mixed": ("search", "US", "tv", grants[1]),
        "empty": ("", None, "tablet", None),
        "later": (None, None, None, None),
    }
