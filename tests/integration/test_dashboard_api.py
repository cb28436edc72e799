"""Dashboard routes: who may see what, bad parameters as 400s, time zones and DST."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lufy.bootstrap import Container
from lufy.testing.analytics import (
    LocalProjector,
    http_client,
    insert_artist,
    insert_track,
    issue_grant,
)


@pytest.fixture
async def client(container: Container):
    await container.db.pool.wait()
    async with http_client(container) as c:
        yield c


@pytest.fixture
async def artist(admin_conn) -> uuid.UUID:
    return await insert_artist(admin_conn)


def as_(role: str, user: uuid.UUID) -> dict[str, str]:
    return {"x-test-principal": f"{role}:{user}"}


async def test_the_dashboard_needs_a_signed_in_artist_or_admin(client, artist) -> None:
    assert (await client.get("/api/dashboard/overview")).status_code == 401
    listener = await client.get("/api/dashboard/overview", headers=as_("listener", uuid.uuid4()))
    assert listener.status_code == 403
    other = await client.get(
        "/api/dashboard/overview",
        params={"artist_id": str(uuid.uuid4())},
        headers=as_("artist", artist),
    )
    assert other.status_code == 403
    assert other.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("path", "params", "names"),
    [
        ("overview", {"range": "5x"}, "range"),
        ("overview", {"range": "7d", "from": "2026-01-01", "to": "2026-01-02"}, "range"),
        ("overview", {"from": "2026-01-01"}, "from/to"),
        ("overview", {"from": "2026-01-05", "to": "2026-01-01"}, "to"),
        ("overview", {"from": "2026-01-01", "to": "2026-01-02T00:00:00Z"}, "from/to"),
        ("overview", {"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00"}, "from"),
        ("overview", {"from": "2026-02-30", "to": "2026-03-02"}, "from"),
        ("overview", {"tz": "Mars/Olympus_Mons"}, "tz"),
        ("overview", {"range": "999d"}, "range"),
        ("timeseries", {"metric": "revenue"}, "metric"),
        ("timeseries", {"granularity": "year"}, "granularity"),
        ("tracks", {"sort": "title"}, "sort"),
        ("tracks", {"limit": "0"}, "limit"),
        ("breakdown", {"dimension": "city"}, "dimension"),
    ],
)
async def test_bad_parameters_are_a_400_naming_the_parameter(
    client, artist, path, params, names
) -> None:
    response = await client.get(
        f"/api/dashboard/{path}", params=params, headers=as_("artist", artist)
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(names), response.json()


async def test_a_fall_back_day_has_25_hourly_points_and_a_spring_forward_day_23(
    client, artist
) -> None:
    who = as_("artist", artist)
    for day, count, first, last in (
        ("2026-11-01", 25, "2026-11-01T00:00:00-04:00", "2026-11-01T23:00:00-05:00"),
        ("2026-03-08", 23, "2026-03-08T00:00:00-05:00", "2026-03-08T23:00:00-04:00"),
    ):
        params = {"from": day, "to": day, "tz": "America/New_York", "granularity": "hour"}
        points = (await client.get("/api/dashboard/timeseries", params=params, headers=who)).json()[
            "points"
        ]
        assert len(points) == count
        assert (points[0]["t"], points[-1]["t"]) == (first, last)
        assert all(p["value"] == 0 for p in points)
    params = {"from": "2026-10-31", "to": "2026-11-02", "tz": "America/New_York"}
    days = (await client.get("/api/dashboard/timeseries", params=params, headers=who)).json()
    assert [p["t"] for p in days["points"]] == [
        "2026-10-31T00:00:00-04:00",
        "2026-11-01T00:00:00-04:00",
        "2026-11-02T00:00:00-05:00",
    ]


async def test_weeks_start_on_monday_and_months_on_the_first_in_the_zone(client, artist) -> None:
    who = as_("artist", artist)
    params = {"from": "2026-01-01", "to": "2026-03-10", "tz": "Asia/Kolkata"}
    weeks = (
        await client.get(
            "/api/dashboard/timeseries", params={**params, "granularity": "week"}, headers=who
        )
    ).json()["points"]
    assert weeks[0]["t"] == "2025-12-29T00:00:00+05:30"  # the Monday of the first day's week
    assert all(datetime.fromisoformat(p["t"]).weekday() == 0 for p in weeks)
    months = (
        await client.get(
            "/api/dashboard/timeseries", params={**params, "granularity": "month"}, headers=who
        )
    ).json()["points"]
    assert [p["t"] for p in months] == [
        "2026-01-01T00:00:00+05:30",
        "2026-02-01T00:00:00+05:30",
        "2026-03-01T00:00:00+05:30",
    ]


async def test_an_artist_reads_only_their_own_rows_even_without_a_filter(
    client, admin_conn, db, store
) -> None:
    mine, theirs = await insert_artist(admin_conn), await insert_artist(admin_conn)
    tracks = [await insert_track(admin_conn, mine), await insert_track(admin_conn, theirs)]
    now = datetime.now(UTC)
    grants = [str(await issue_grant(db, store, tracks[i % 2])) for i in range(10)]
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "type": "playback.progress",
            "occurred_at": (now - timedelta(minutes=i)).isoformat(),
            "session_id": f"s-{i}",
            "anonymous_id": f"anon-{i}",
            "track_id": str(tracks[i % 2]),
            "listened_ms": 40_000,
            "grant_id": grants[i],
        }
        for i in range(10)
    ]
    response = await client.post(
        "/api/analytics/events",
        content=json.dumps({"events": events}),
        headers={"content-type": "application/json"},
    )
    assert response.json()["accepted"] == 10
    await LocalProjector(db, store).run()
    for table in ("playback_sessions", "track_rollup_15m"):
        async with db.transaction(user_id=mine, role="artist") as conn:
            cur = await conn.execute(f"SELECT DISTINCT artist_id FROM {table}")
            assert await cur.fetchall() == [(mine,)]
        async with db.transaction(user_id=uuid.uuid4(), role="admin") as conn:
            cur = await conn.execute(f"SELECT count(DISTINCT artist_id) FROM {table}")
            assert (await cur.fetchone())[0] == 2
    overview = (await client.get("/api/dashboard/overview", headers=as_("artist", mine))).json()
    assert overview["streams"] == 5
    assert overview["listeners"] == 5
    everyone = (await client.get("/api/dashboard/overview", headers=as_("admin", mine))).json()
    assert everyone["streams"] == 10
    realtime = (await client.get("/api/dashboard/realtime", headers=as_("artist", mine))).json()
    assert len(realtime["points"]) == 30
    assert sum(p["value"] for p in realtime["points"]) == 5
    csv_response = await client.get(
        "/api/dashboard/export.csv",
        params={"range": "7d", "metric": "streams"},
        headers=as_("artist", mine),
    )
    assert csv_response.headers["content-type"].startswith("text/csv")
    lines = csv_response.text.strip().split("\n")
    assert lines[0] == "t,streams"
    assert len(lines) == 8
    assert sum(float(line.split(",")[1]) for line in lines[1:]) == 5


async def test_the_csv_export_names_its_charset_once(container) -> None:
    from tests.helpers.accounts import create_user
    from tests.helpers.http import api_client

    artist = await create_user(container, role="artist")
    async with api_client(container) as client:
        response = await client.get("/api/dashboard/export.csv", headers=artist.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text.splitlines()[0].startswith("t,")
