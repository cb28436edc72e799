"""POST /api/analytics/events: validation per event, idempotency, limits, sampling, bots."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lufy.bootstrap import Container, bootstrap
from lufy.testing.analytics import (
    LocalProjector,
    http_client,
    insert_artist,
    insert_track,
    issue_grant,
)

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def event(track_id: uuid.UUID | None, **fields: Any) -> dict[str, Any]:
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "playback.progress",
        "occurred_at": datetime.now(UTC).isoformat(),
        "session_id": "s-" + uuid.uuid4().hex[:8],
        "anonymous_id": "anon-1",
        "listened_ms": 31000,
    }
    if track_id is not None:
        body["track_id"] = str(track_id)
    body.update(fields)
    return body


@pytest.fixture
async def track(admin_conn) -> uuid.UUID:
    artist = await insert_artist(admin_conn)
    return await insert_track(admin_conn, artist)


@pytest.fixture
async def client(container: Container):
    await container.db.pool.wait()
    async with http_client(container) as c:
        yield c


async def post(client, events, **headers) -> Any:
    return await client.post(
        "/api/analytics/events",
        content=json.dumps({"events": events}),
        headers={"content-type": "application/json", "user-agent": CHROME, **headers},
    )


async def test_a_batch_with_one_bad_event_accepts_the_others_and_names_the_bad_one(
    client, track
) -> None:
    events = [event(track), event(track, listened_ms=-5), event(track), event(None)]
    response = await post(client, events)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert body["duplicates"] == 0
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert "listened_ms" in body["rejected"][0]["reason"]
    assert body["rejected"][1]["reason"] == "track_id: required for playback.progress"


async def test_a_retried_batch_reports_duplicates_and_writes_nothing_twice(
    client, track, admin_conn
) -> None:
    events = [event(track) for _ in range(5)]
    first = (await post(client, events)).json()
    again = (await post(client, events)).json()
    assert (first["accepted"], first["duplicates"]) == (5, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 5)
    cur = await admin_conn.execute("SELECT count(*) FROM lufy.events WHERE type LIKE 'playback.%'")
    assert (await cur.fetchone())[0] == 5


async def test_the_same_event_twice_in_one_batch_is_one_accepted_and_one_duplicate(
    client, track
) -> None:
    one = event(track)
    body = (await post(client, [one, one])).json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)


async def test_unknown_tracks_and_artists_are_rejected_by_name(client, track) -> None:
    events = [
        event(uuid.uuid4()),
        event(None, type="artist.followed", artist_id=str(uuid.uuid4())),
        event(track),
    ]
    body = (await post(client, events)).json()
    assert body["rejected"] == [
        {"index": 0, "reason": "unknown track"},
        {"index": 1, "reason": "unknown artist"},
    ]
    assert body["accepted"] == 1


async def test_occurred_at_must_be_within_seven_days_past_and_ten_minutes_ahead(
    client, track
) -> None:
    now = datetime.now(UTC)
    events = [
        event(track, occurred_at=(now - timedelta(days=8)).isoformat()),
        event(track, occurred_at=(now + timedelta(minutes=30)).isoformat()),
        event(track, occurred_at="2026-01-01T10:00:00"),
        event(track, occurred_at=(now - timedelta(days=6)).isoformat()),
    ]
    body = (await post(client, events)).json()
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert reasons[0] == "occurred_at: more than 7 days in the past"
    assert reasons[1] == "occurred_at: more than 10 minutes in the future"
    assert 2 in reasons
    assert body["accepted"] == 1


async def test_a_malformed_body_is_a_400_problem(client) -> None:
    for content in (b"{not json", b"[]", b'{"events": 3}'):
        response = await client.post(
            "/api/analytics/events", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "events" in response.json()["detail"]


async def test_more_than_500_events_or_1_mib_is_a_413(client, track) -> None:
    response = await post(client, [event(track) for _ in range(501)])
    assert response.status_code == 413
    assert "500" in response.json()["detail"]
    big = event(track, properties={"pad": "x" * (1024 * 1024)})
    response = await post(client, [big])
    assert response.status_code == 413


async def test_text_plain_bodies_from_send_beacon_are_accepted(client, track) -> None:
    response = await client.post(
        "/api/analytics/events",
        content=json.dumps({"events": [event(track)]}),
        headers={"content-type": "text/plain;charset=UTF-8", "user-agent": CHROME},
    )
    assert response.status_code == 202
    assert response.json()["accepted"] == 1


async def test_bots_are_dropped_and_nothing_is_written(client, track, admin_conn) -> None:
    body = (
        await post(client, [event(track)], **{"user-agent": "Googlebot/2.1 (+http://x.test)"})
    ).json()
    assert body == {"accepted": 0, "duplicates": 0, "sampled_out": 0, "rejected": []}
    cur = await admin_conn.execute("SELECT count(*) FROM lufy.events")
    assert (await cur.fetchone())[0] == 0


async def test_country_and_device_come_from_headers_and_no_ip_is_stored(
    settings, track, admin_conn
) -> None:
    # The test client connects from 127.0.0.1: here, our CDN's edge.
    container = bootstrap(settings.model_copy(update={"TRUSTED_PROXIES": "127.0.0.0/8"}))
    await container.start()
    await container.db.pool.wait()
    try:
        async with http_client(container) as client:
            response = await post(
                client,
                [event(track)],
                **{
                    "user-agent": IPHONE,
                    "cloudfront-viewer-country": "se",
                    "x-forwarded-for": "9.9.9.9",
                },
            )
    finally:
        await container.stop()
    assert response.json()["accepted"] == 1, response.text
    cur = await admin_conn.execute("SELECT data::text, metadata::text FROM lufy.events")
    data, metadata = await cur.fetchone()
    stored = json.loads(data)
    assert (stored["country"], stored["device"]) == ("SE", "mobile")
    assert "9.9.9.9" not in data + metadata
    assert stored["listener_key"] != "anon-1"


async def test_sampling_keeps_a_listener_always_or_never_with_weight_one_over_rate(
    settings, track, admin_conn
) -> None:
    container = bootstrap(settings.model_copy(update={"ANALYTICS_SAMPLE_RATE": 0.25}))
    await container.start()
    await container.db.pool.wait()
    try:
        async with http_client(container) as client:
            events = [event(track, anonymous_id=f"anon-{i % 40}") for i in range(400)]
            body = (await post(client, events)).json()
            fresh = [event(track, anonymous_id=f"anon-{i}") for i in range(40)]
            again = (await post(client, fresh)).json()
    finally:
        await container.stop()
    assert body["accepted"] + body["sampled_out"] == 400
    assert 0 < body["accepted"] < 400
    assert body["accepted"] % 10 == 0  # each listener sent 10 events: all kept or all dropped
    assert again["accepted"] * 10 == body["accepted"]
    cur = await admin_conn.execute("SELECT DISTINCT (metadata->>'weight')::float FROM lufy.events")
    assert await cur.fetchall() == [(4.0,)]


async def test_postgres_down_is_a_503_with_retry_after(settings, track) -> None:
    down = settings.model_copy(
        update={"DATABASE_URL": "postgresql://lufy_app:lufy_app@127.0.0.1:1/nowhere"}
    )
    container = bootstrap(down)
    async with http_client(container) as client:
        response = await post(client, [event(track)])
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0


async def test_accepted_events_reach_the_session_read_model(client, track, db, store) -> None:
    session = "s-read-model"
    start = datetime.now(UTC) - timedelta(minutes=5)
    grant = str(await issue_grant(db, store, track, at=start - timedelta(seconds=2)))
    events = [
        event(
            track,
            type="playback.started",
            session_id=session,
            listened_ms=0,
            occurred_at=start.isoformat(),
            grant_id=grant,
        ),
        event(
            track,
            session_id=session,
            listened_ms=45000,
            occurred_at=(start + timedelta(seconds=45)).isoformat(),
            grant_id=grant,
        ),
    ]
    await post(client, events)
    await LocalProjector(db, store).run()
    async with db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT listened_ms, is_stream, started_at FROM playback_sessions "
            "WHERE session_id = %s",
            [session],
        )
        row = await cur.fetchone()
    assert row[0] == 45000
    assert row[1] is True
    assert abs((row[2] - start).total_seconds()) < 0.001


async def test_nul_characters_reject_only_their_event(client, track) -> None:
    events = [
        event(track, properties={"note": "a\u0000b"}),
        event(track, session_id="s-\u0000"),
        event(track, properties={"k\u0000": 1}),
        event(track),
    ]
    response = await post(client, events)
    assert response.status_code == 202, response.text
    body = response.json()
    assert [r["index"] for r in body["rejected"]] == [0, 1, 2]
    assert body["rejected"][1]["reason"].startswith("session_id: must not contain NUL")
    assert body["accepted"] == 1


async def test_absurdly_nested_properties_are_a_clear_4xx(client, track) -> None:
    body = '{"events": [' + json.dumps(event(track))[:-1] + ', "properties": '
    body += '{"a": ' * 5000 + "1" + "}" * 5000 + "}]}"
    response = await client.post(
        "/api/analytics/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "nested" in response.json()["detail"]
    shallow = event(track, properties={"a": {"b": {"c": [1, [2, [3]]]}}})
    deep: dict = {"x": 1}
    for _ in range(40):
        deep = {"x": deep}
    body = (await post(client, [shallow, event(track, properties=deep)])).json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {"index": 1, "reason": "properties: nested more than 32 levels deep"}
    ]
