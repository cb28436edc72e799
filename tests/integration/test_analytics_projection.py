"""The analytics projection: late and out-of-order events land where the session started."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from lufy.analytics.ingest import ImportedEvent, IngestContext, Ingestor
from lufy.analytics.testing import LocalProjector, insert_artist, insert_track


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
