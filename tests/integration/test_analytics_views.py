"""Schema analytics for lufy_analyst; `lufy analytics refresh`; `lufy events import`; the job."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from lufy.db import Database
from lufy.eventstore import EventStore
from lufy.settings import get_settings
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track


def analyst_url(settings) -> str:
    parts = urlsplit(settings.DATABASE_URL)
    netloc = f"lufy_analyst:lufy_analyst@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


def line(track: uuid.UUID, **fields) -> str:
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "playback.progress",
        "occurred_at": (datetime.now(UTC) - timedelta(days=40)).isoformat(),
        "session_id": "s-" + uuid.uuid4().hex[:8],
        "listener_id": str(uuid.uuid4()),
        "track_id": str(track),
        "listened_ms": 95_000,
        "country": "DE",
        "device": "desktop",
        **fields,
    }
    return json.dumps(body)


def make_track(settings) -> uuid.UUID:
    async def go() -> uuid.UUID:
        async with await psycopg.AsyncConnection.connect(
            settings.DATABASE_ADMIN_URL, autocommit=True
        ) as admin:
            return await insert_track(admin, await insert_artist(admin))

    return asyncio.run(go())


def project(settings) -> None:
    async def go() -> None:
        db = Database(settings.DATABASE_URL, min_size=1, max_size=2)
        await db.open(wait=True)
        try:
            await LocalProjector(db, EventStore()).run()
        finally:
            await db.close()

    asyncio.run(go())


@pytest.fixture
def run_cli(settings, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.DATABASE_URL)
    monkeypatch.setenv("DATABASE_ADMIN_URL", settings.DATABASE_ADMIN_URL)
    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)
    monkeypatch.setenv("LUFY_ENV", "test")
    get_settings.cache_clear()

    def run(*args: str):
        """The real command line, in a process of its own (exit status, stderr)."""
        env = {
            **os.environ,
            "DATABASE_URL": settings.DATABASE_URL,
            "DATABASE_ADMIN_URL": settings.DATABASE_ADMIN_URL,
            "REDIS_URL": settings.REDIS_URL,
            "LUFY_ENV": "test",
        }
        done = subprocess.run(
            [sys.executable, "-m", "lufy.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return SimpleNamespace(exit_code=done.returncode, stderr=done.stderr)

    yield run
    get_settings.cache_clear()


def test_import_appends_old_events_once_and_reports_bad_lines(settings, run_cli, tmp_path) -> None:
    track = make_track(settings)
    good = [line(track) for _ in range(3)]
    path = tmp_path / "events.ndjson"
    path.write_text(
        "\n".join([*good, "", "{broken", line(track, track_id=str(uuid.uuid4()))]) + "\n"
    )
    first = run_cli("events", "import", str(path))
    assert first.exit_code == 1
    assert "line 5: not JSON" in first.stderr
    assert "line 6: unknown track" in first.stderr
    assert "3 accepted, 0 duplicate(s), 0 sampled out, 2 rejected" in first.stderr
    path.write_text("\n".join(good) + "\n")
    again = run_cli("events", "import", str(path))
    assert again.exit_code == 0, again.stderr
    assert "0 accepted, 3 duplicate(s)" in again.stderr
    with psycopg.connect(settings.DATABASE_ADMIN_URL) as admin:
        count, oldest = admin.execute(
            "SELECT count(*), min(occurred_at) FROM lufy.events"
        ).fetchone()
    assert count == 3
    assert oldest < datetime.now(UTC) - timedelta(days=39)


def test_analysts_read_the_analytics_schema_without_personal_data(
    settings, run_cli, tmp_path
) -> None:
    track = make_track(settings)
    listener = uuid.uuid4()
    path = tmp_path / "events.ndjson"
    path.write_text(
        "\n".join(
            line(track, listener_id=str(listener), anonymous_id="anon-secret") for _ in range(2)
        )
        + "\n"
    )
    assert run_cli("events", "import", str(path)).exit_code == 0
    project(settings)
    refresh = run_cli("analytics", "refresh")
    assert refresh.exit_code == 0, refresh.stderr
    assert "refreshed analytics.track_daily" in refresh.stderr

    with psycopg.connect(analyst_url(settings)) as analyst:
        cur = analyst.execute(
            "SELECT streams, listeners, listen_seconds, starts FROM analytics.track_daily"
        )
        assert cur.fetchall() == [(2.0, 1.0, 190.0, 2.0)]
        cur = analyst.execute("SELECT sum(streams), sum(listeners) FROM analytics.artist_daily")
        assert (cur.fetchone())[0] is not None
        cur = analyst.execute("SELECT listener_key, is_stream FROM analytics.playback_sessions")
        rows = cur.fetchall()
        assert len(rows) == 2
        assert all(str(listener) not in key for key, _ in rows)
        cur = analyst.execute("SELECT data::text FROM analytics.events")
        texts = [r[0] for r in cur.fetchall()]
        assert texts
        assert not any(str(listener) in t or "anon-secret" in t for t in texts)
        cur = analyst.execute(
            "SELECT c.relname, obj_description(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'analytics' "
            "AND c.relkind IN ('v', 'm')"
        )
        comments = dict(cur.fetchall())
        assert {"playback_sessions", "track_daily", "artist_daily", "events"} <= comments.keys()
        assert all(comments.values())
        cur = analyst.execute("SELECT count(*) FROM analytics.freshness")
        assert (cur.fetchone())[0] == 2
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute("SELECT * FROM lufy.events")
        analyst.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute("SELECT * FROM lufy.analytics_secret")


async def test_the_refresh_job_refreshes_the_views(settings, admin_conn) -> None:
    from lufy.analytics.jobs import refresh_analytics
    from lufy.jobs.broker import configure

    runtime = configure(settings, pool_size=1)
    try:
        refresh_analytics({}, job_key="refresh-test")
    finally:
        runtime.close()
    cur = await admin_conn.execute("SELECT view_name FROM lufy.analytics_refreshes ORDER BY 1")
    assert await cur.fetchall() == [("artist_daily",), ("track_daily",)]


async def test_the_analyst_events_view_carries_no_free_form_properties(admin_conn) -> None:
    cur = await admin_conn.execute("SELECT pg_get_viewdef('analytics.events'::regclass)")
    row = await cur.fetchone()
    assert row is not None
    assert "'properties'::text" in row[0]
