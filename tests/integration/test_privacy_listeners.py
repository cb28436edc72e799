"""Privacy: raw listener ids sealed per person and per month; the sealing migration seals the
ones already in the log; retention destroys month keys and the dashboards stay as they were."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest

from lufy.analytics.classify import listener_key
from lufy.analytics.events import PlaybackCompleted, PlaybackStarted, TrackLiked
from lufy.analytics.importer import import_lines
from lufy.analytics.ingest import Ingestor
from lufy.analytics.projections import AnalyticsProjection
from lufy.bootstrap import Container
from lufy.catalog.events import STREAM_AUTH_STREAM, StreamAuthorized
from lufy.eventstore import ANY, EventMetadata, NewEvent
from lufy.migrate import migrate
from lufy.privacy.erasure import forget
from lufy.privacy.export import export_person
from lufy.privacy.listeners import ListenerHasher, month_of, month_subject
from lufy.privacy.retention import expire_raw_analytics
from lufy.privacy.sealing import ERASED, Keyring, is_sealed
from lufy.projections.rebuild import rebuild
from lufy.settings import Settings
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track
from tests.helpers.accounts import create_user
from tests.helpers.dashboards import artist_dashboards
from tests.integration.test_accounts_cli import run_cli

_LOG = (
    "SELECT global_position, event_id, transaction_id::text, stream_type, stream_id, "
    "stream_version, type, occurred_at, recorded_at FROM lufy.events ORDER BY global_position"
)
_LISTENING = (
    "SELECT global_position, type, data, metadata FROM lufy.events "
    "WHERE stream_type IN ('analytics', 'track_stream') ORDER BY global_position"
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


async def _open(container: Container, value: str) -> str:
    async with container.db.transaction(role="system") as conn:
        return await Keyring().open(conn, value)


async def _old_listening(
    container: Container, user_id: uuid.UUID, track_id: uuid.UUID, anonymous_id: str
) -> None:
    """Listening as written before listener sealing: a grant naming the user (data and
    metadata), a signed-in session verified by it, an imported anonymous session."""
    secret = await ListenerHasher().secret(container.db)
    now = datetime.now(UTC).replace(microsecond=0)
    grant_id = uuid.uuid4()
    grant = StreamAuthorized(
        track_id=track_id,
        listener_id=user_id,
        expires_at=now,
        delivery="local",
        grant_id=grant_id,
    )
    signed = {
        "listener_key": listener_key(secret, f"u:{user_id}"),
        "listener_id": str(user_id),
        "anonymous_id": anonymous_id,
        "track_id": track_id,
        "grant_id": grant_id,
    }
    anonymous = {
        "listener_key": listener_key(secret, f"a:{anonymous_id}-2"),
        "anonymous_id": f"{anonymous_id}-2",
        "track_id": track_id,
        "imported": True,
    }
    events = [
        PlaybackStarted(session_id="old-1", listened_ms=0, **signed),
        PlaybackCompleted(session_id="old-1", listened_ms=45_000, **signed),
        TrackLiked(session_id="old-1", **signed),
        PlaybackStarted(session_id="old-2", listened_ms=0, **anonymous),
        PlaybackCompleted(session_id="old-2", listened_ms=50_000, **anonymous),
    ]
    async with container.db.transaction(role="system") as conn:
        cur = await conn.execute("SELECT artist_id FROM lufy.tracks WHERE id = %s", [track_id])
        artist_id = (await cur.fetchone() or [None])[0]
        await container.store.append(
            conn,
            STREAM_AUTH_STREAM,
            str(track_id),
            [
                NewEvent(
                    event=grant,
                    occurred_at=now - timedelta(hours=1),
                    metadata=EventMetadata(actor_id=str(user_id)),
                )
            ],
            expected=ANY,
        )
        await container.store.append_bulk(
            conn,
            [
                NewEvent(
                    event=msgspec.structs.replace(e, artist_id=artist_id),
                    occurred_at=now - timedelta(minutes=30 - i),
                    stream_type="analytics",
                    stream_id=e.session_id,
                )
                for i, e in enumerate(events)
            ],
        )


async def test_the_sealing_migration_seals_listener_ids_in_the_log_once_and_counts_stay(
    container: Container, settings: Settings, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    admin = await create_user(container, role="admin")
    listener = await create_user(container)
    artist = await insert_artist(admin_conn)
    track = await insert_track(admin_conn, artist)
    anonymous_id = f"anon-{uuid.uuid4().hex}"
    await _old_listening(container, listener.id, track, anonymous_id)
    # As in a database the previous version's `lufy migrate` checked after these events: the
    # accounts check is past them, the listener check (new) has never run.
    progress = await admin_conn.execute(
        "UPDATE lufy.privacy_sealing SET checked_below = lufy.read_barrier(), "
        "listeners_checked_below = NULL"
    )
    assert progress.rowcount == 1
    projector = LocalProjector(container.db, container.store)
    await projector.run()
    before = await artist_dashboards(container, admin.headers, [artist])
    assert before[0]["streams"] == 2  # the grant-verified session and the imported one
    assert before[0]["listeners"] == 2
    log_before = await (await admin_conn.execute(_LOG)).fetchall()

    report = migrate(settings.DATABASE_ADMIN_URL, settings.DATABASE_URL)
    assert report.sealing is not None
    assert (report.sealing.listener_events_sealed, report.sealing.grants_rekeyed) == (5, 1)

    log_after = await (await admin_conn.execute(_LOG)).fetchall()
    assert log_after[:-1] == log_before  # ids, positions, streams, times, order
    rows = await (await admin_conn.execute(_LISTENING)).fetchall()
    text = json.dumps([[r[2], r[3]] for r in rows])
    for clear in (str(listener.id), listener.id.hex, anonymous_id):
        assert clear not in text
    [grant] = [r for r in rows if r[1] == "catalog.stream_authorized"]
    secret = await ListenerHasher().secret(container.db)
    assert grant[2]["listener_key"] == listener_key(secret, f"u:{listener.id}")
    assert "listener_id" not in grant[2]
    assert "actor_id" not in grant[3]
    signed = [r[2] for r in rows if r[2].get("session_id") == "old-1"]
    assert all(is_sealed(d["listener_id"]) and is_sealed(d["anonymous_id"]) for d in signed)
    assert await _open(container, signed[0]["listener_id"]) == str(listener.id)
    assert await _open(container, signed[0]["anonymous_id"]) == anonymous_id

    # The export still finds the person's plays and likes (by listener_key).
    exported = json.loads(await export_person(container, listener.id))
    assert [s["session_id"] for s in exported["playback_sessions"]] == ["old-1"]
    assert [e["type"] for e in exported["likes_and_follows"]] == ["track.liked"]

    again = migrate(settings.DATABASE_ADMIN_URL, settings.DATABASE_URL)
    assert again.sealing is None
    assert await (await admin_conn.execute(_LISTENING)).fetchall() == rows

    result = await rebuild(
        settings.DATABASE_URL, AnalyticsProjection(), store=container.store, compare=True
    )
    assert result.swapped
    assert all(d == (0, 0) for d in result.differences.values()), result.differences
    assert await artist_dashboards(container, admin.headers, [artist]) == before

    await forget(container, listener.id, via="cli")
    assert await _open(container, signed[0]["listener_id"]) == ERASED
    await projector.run()
    assert await artist_dashboards(container, admin.headers, [artist]) == before


def _line(track: uuid.UUID, at: datetime, **listener: str) -> str:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "playback.completed",
            "occurred_at": at.isoformat(),
            "session_id": str(uuid.uuid4()),
            "track_id": str(track),
            "listened_ms": 60_000,
            **listener,
        }
    )


async def _listener_ids(conn: psycopg.AsyncConnection[Any]) -> dict[str, str]:
    cur = await conn.execute(
        "SELECT data->>'session_id', coalesce(data->>'listener_id', data->>'anonymous_id') "
        "FROM lufy.events WHERE stream_type = 'analytics'"
    )
    return dict(await cur.fetchall())


async def test_retention_destroys_old_months_keys_and_a_rebuild_gives_the_same_dashboards(
    container: Container, settings: Settings, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    admin = await create_user(container, role="admin")
    listener = await create_user(container)
    artist = await insert_artist(admin_conn)
    track = await insert_track(admin_conn, artist)
    now = datetime.now(UTC)
    ages = {"old": 200, "older": 100, "recent": 1}
    lines = [
        _line(track, now - timedelta(days=days), listener_id=str(listener.id))
        for days in ages.values()
    ] + [_line(track, now - timedelta(days=days), anonymous_id="anon-a") for days in ages.values()]
    ingestor = Ingestor(container.db, container.store, sample_rate=1.0)
    imported = await import_lines(ingestor, io.StringIO("\n".join(lines) + "\n"))
    assert imported.accepted == 6, imported.rejected
    projector = LocalProjector(container.db, container.store)
    await projector.run()
    before = await artist_dashboards(container, admin.headers, [artist], range_="12m")
    assert (before[0]["streams"], before[0]["listeners"]) == (6, 2)
    sealed = await _listener_ids(admin_conn)

    with psycopg.connect(settings.DATABASE_URL) as conn:
        report = expire_raw_analytics(conn, 40, now=now)
        assert report is not None
        assert expire_raw_analytics(conn, 40, now=now) is None  # idempotent
    expired = {month_of(now - timedelta(days=d)).isoformat() for d in (200, 100)}
    assert set(report.months) == expired
    assert report.retention_days == 40
    cur = await admin_conn.execute(
        "SELECT type, data->>'months' FROM lufy.events WHERE stream_type = 'operations' "
        "AND stream_id = 'analytics_retention'"
    )
    assert [r[0] for r in await cur.fetchall()] == ["operations.analytics_raw_expired"]
    cur = await admin_conn.execute(
        "SELECT count(*) FROM lufy.data_keys WHERE subject_id = ANY(%s)",
        [[month_subject(month_of(now - timedelta(days=d))) for d in (200, 100)]],
    )
    assert await cur.fetchone() == (0,)
    opened = {await _open(container, value) for value in sealed.values()}
    assert opened == {ERASED, str(listener.id), "anon-a"}
    recent = [v for v in sealed.values() if await _open(container, v) != ERASED]
    assert len(recent) == 2

    # Aggregates count by listener_key: a rebuild without the month keys gives the same numbers.
    result = await rebuild(
        settings.DATABASE_URL, AnalyticsProjection(), store=container.store, compare=True
    )
    assert result.swapped
    assert all(d == (0, 0) for d in result.differences.values()), result.differences
    assert await artist_dashboards(container, admin.headers, [artist], range_="12m") == before

    # A late import into an expired month gets no key back: it never opens.
    late = await import_lines(
        ingestor,
        io.StringIO(_line(track, now - timedelta(days=200), anonymous_id="anon-late") + "\n"),
    )
    assert late.accepted == 1
    new = set((await _listener_ids(admin_conn)).values()) - set(sealed.values())
    assert [await _open(container, v) for v in new] == [ERASED]


async def test_the_retention_command_expires_what_the_setting_says(
    container: Container, settings: Settings
) -> None:
    unset = run_cli(settings, "analytics", "expire-raw", stdin="")
    assert unset.returncode == 2
    assert "ANALYTICS_RAW_RETENTION_DAYS" in unset.stderr
    done = run_cli(settings, "analytics", "expire-raw", "--days", "30", stdin="")
    assert done.returncode == 0, done.stderr
    assert "nothing to expire" in done.stderr


async def test_many_processes_first_using_a_month_at_once_share_one_month_key(
    container: Container, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    artist = await insert_artist(admin_conn)
    track = await insert_track(admin_conn, artist)
    at = datetime.now(UTC) - timedelta(days=400)
    # One Ingestor per "process": none has the month's key cached.
    ingestors = [Ingestor(container.db, container.store, sample_rate=1.0) for _ in range(8)]
    reports = await asyncio.gather(
        *(
            import_lines(ingestor, io.StringIO(_line(track, at, anonymous_id=f"anon-{n}") + "\n"))
            for n, ingestor in enumerate(ingestors)
        )
    )
    assert [r.accepted for r in reports] == [1] * 8, [r.rejected for r in reports]
    cur = await admin_conn.execute(
        "SELECT count(*) FROM lufy.data_keys WHERE subject_id = %s",
        [month_subject(month_of(at))],
    )
    assert await cur.fetchone() == (1,)
    opened = {await _open(container, v) for v in (await _listener_ids(admin_conn)).values()}
    assert opened == {f"anon-{n}" for n in range(8)}


async def test_the_refresh_job_expires_old_months_when_retention_is_set(
    container: Container, settings: Settings, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    from lufy.analytics.jobs import refresh_analytics
    from lufy.jobs.broker import configure

    artist = await insert_artist(admin_conn)
    track = await insert_track(admin_conn, artist)
    old = datetime.now(UTC) - timedelta(days=90)
    ingestor = Ingestor(container.db, container.store, sample_rate=1.0)
    await import_lines(ingestor, io.StringIO(_line(track, old, anonymous_id="anon-o") + "\n"))
    [value] = (await _listener_ids(admin_conn)).values()
    assert await _open(container, value) == "anon-o"
    for days, expected in ((None, "anon-o"), (30, ERASED)):
        runtime = configure(
            settings.model_copy(update={"ANALYTICS_RAW_RETENTION_DAYS": days}), pool_size=1
        )
        try:
            refresh_analytics({}, job_key=f"refresh-{days}")
        finally:
            runtime.close()
        assert await _open(container, value) == expected
