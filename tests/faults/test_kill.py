"""The projector or a worker killed with SIGKILL under load: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import redis as sync_redis

from lufy.bootstrap import bootstrap
from lufy.catalog.events import STREAM_AUTH_STREAM, StreamAuthorized
from lufy.eventstore import ANY, NewEvent
from lufy.settings import load_settings
from tests.faults.harness import Load, Stack, wait_for


def make_track(deployment: Stack) -> uuid.UUID:
    """A ready, published track straight in its read model: these tests are about the
    projector and the log, not about uploads."""
    track_id, artist_id = uuid.uuid4(), uuid.uuid4()
    with deployment.admin() as conn:
        conn.execute(
            "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published) "
            "VALUES (%s, %s, 'Fault Line', 'ready', 180000, true)",
            [track_id, artist_id],
        )
    return track_id


def playback_ingest(track_id: uuid.UUID, grants: list[uuid.UUID] | None = None) -> Any:
    """Each call: one whole playback session (started, progress past 30 s, completed), backed by
    a stream grant of its own when `grants` are given (so that it is a verified stream)."""

    def send(client: httpx.Client, i: int) -> tuple[int, Any]:
        session = uuid.uuid4().hex
        now = datetime.now(UTC).isoformat()
        common = {
            "occurred_at": now,
            "session_id": session,
            "anonymous_id": f"listener-{session}",  # one listener per session
            "track_id": str(track_id),
        }
        if grants is not None:
            if i >= len(grants):
                return 0, "the test's pool of stream grants is used up"
            common["grant_id"] = str(grants[i])
        events = [
            {"event_id": str(uuid.uuid4()), "type": "playback.started", "listened_ms": 0},
            {"event_id": str(uuid.uuid4()), "type": "playback.progress", "listened_ms": 31000},
            {"event_id": str(uuid.uuid4()), "type": "playback.completed", "listened_ms": 60000},
        ]
        body = {"events": [{**common, **e} for e in events]}
        response = client.post("/api/analytics/events", json=body)
        if response.status_code == 202 and response.json()["accepted"] == 3:
            return 202, session
        return response.status_code, response.text

    return send


def pending(deployment: Stack, name: str) -> int:
    """Committed events past a reader's checkpoint: (transaction id, position) order, where a
    checkpoint (x, 0) means every transaction below x is done."""
    with deployment.admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM lufy.events e JOIN lufy.checkpoints c ON c.name = %s "
            "WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)",
            [name],
        ).fetchone()
    assert row is not None
    return int(row[0])


def has_checkpoint(deployment: Stack, name: str) -> bool:
    with deployment.admin() as conn:
        row = conn.execute("SELECT 1 FROM lufy.checkpoints WHERE name = %s", [name]).fetchone()
    return row is not None


def sessions_applied(deployment: Stack, track_id: uuid.UUID) -> int:
    with deployment.admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM lufy.playback_sessions WHERE track_id = %s", [track_id]
        ).fetchone()
    assert row is not None
    return int(row[0])


def checkpoints(deployment: Stack) -> list[Any]:
    with deployment.admin() as conn:
        return [
            *conn.execute("SELECT * FROM lufy.checkpoints").fetchall(),
            *conn.execute(
                "SELECT usename, state, backend_xid, backend_xmin, now() - xact_start, "
                "left(query, 80) FROM pg_stat_activity WHERE xact_start IS NOT NULL"
            ).fetchall(),
            conn.execute(
                "SELECT pg_current_snapshot(), max(transaction_id) FROM lufy.events"
            ).fetchone(),
        ]


def test_a_projector_killed_under_load_resumes_and_applies_every_event_exactly_once(
    deployment: Stack,
) -> None:
    track_id = make_track(deployment)
    grants = asyncio.run(_issue_grants(deployment, track_id, 5000))
    deployment.serve()
    projector = deployment.projector()
    with Load(deployment.base_url, playback_ingest(track_id, grants), threads=3) as load:
        wait_for(
            lambda: sessions_applied(deployment, track_id) > 0,
            30,
            "the projector to apply",
            on_timeout=lambda: (checkpoints(deployment), load.results[:2]),
        )
        wait_for(lambda: load.statuses().count(202) >= 30, 30, "sessions to be ingested")
        projector.signal(signal.SIGKILL)
        projector.proc.wait(timeout=10)
        time.sleep(0.5)  # ingestion goes on while no projector runs
        deployment.projector("projector-2")
        wait_for(lambda: load.statuses().count(202) >= 60, 30, "more sessions")
    sessions = [kept for _, status, kept in load.results if status == 202]
    assert set(load.statuses()) == {202}, [r for r in load.results if r[1] != 202][:3]

    wait_for(lambda: pending(deployment, "analytics") == 0, 60, "the new projector to catch up")
    with deployment.admin() as conn:
        stored = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_stream AND completed) "
            "FROM lufy.playback_sessions WHERE track_id = %s",
            [track_id],
        ).fetchone()
        rollup = conn.execute(
            "SELECT coalesce(sum(starts), 0), coalesce(sum(streams), 0), "
            "coalesce(sum(completions), 0) FROM lufy.track_rollup_15m WHERE track_id = %s",
            [track_id],
        ).fetchone()
        # The listener bitmaps were written in the same transactions: one listener per session.
        bitmaps = conn.execute(
            "SELECT level, sum(listeners), sum(streams) FROM lufy.listener_bitmaps "
            "WHERE scope = 't' AND owner = %s AND dim = '' GROUP BY level ORDER BY level",
            [track_id],
        ).fetchall()
        # Hours from half past (level 'o') run from 00:30 to 23:30 UTC.
        (half_past,) = conn.execute(
            "SELECT count(*) FROM lufy.playback_sessions WHERE track_id = %s "
            "AND (started_at AT TIME ZONE 'UTC')::time >= '00:30' "
            "AND (started_at AT TIME ZONE 'UTC')::time < '23:30'",
            [track_id],
        ).fetchone()
    assert stored == (len(sessions), len(sessions)), "a session was lost"
    # Additive counters double on a double application: each must equal the session count.
    assert rollup == (len(sessions), len(sessions), len(sessions))
    n = len(sessions)
    o = [("o", half_past, half_past)] if half_past else []
    assert bitmaps == [("d", n, n), ("h", n, n), *o, ("q", n, n), ("s", n, n)]


async def _issue_grants(deployment: Stack, track_id: uuid.UUID, n: int) -> list[uuid.UUID]:
    """`n` stream grants for the track, issued five minutes ago (as the stream route does)."""
    settings = load_settings(
        **{k: v for k, v in deployment.env.items() if k.isupper() and k in _SETTINGS_KEYS}
    )
    container = bootstrap(settings)
    await container.start()
    grants = [uuid.uuid4() for _ in range(n)]
    issued = datetime.now(UTC) - timedelta(minutes=5)
    try:
        async with container.db.transaction(role="system") as conn:
            await container.store.append(
                conn,
                STREAM_AUTH_STREAM,
                str(track_id),
                [
                    NewEvent(
                        event=StreamAuthorized(
                            track_id=track_id,
                            expires_at=issued + timedelta(hours=1),
                            delivery="local",
                            grant_id=grant,
                        ),
                        occurred_at=issued,
                    )
                    for grant in grants
                ],
                expected=ANY,
            )
    finally:
        await container.stop()
    return grants


async def _register(deployment: Stack, emails: list[str]) -> None:
    settings = load_settings(
        **{k: v for k, v in deployment.env.items() if k.isupper() and k in _SETTINGS_KEYS}
    )
    container = bootstrap(settings)
    await container.start()
    try:
        service = container.accounts
        for email in emails:
            await service.register(
                email=email,
                password="correct horse battery staple",
                role="listener",
                verified=False,
            )
    finally:
        await container.stop()


_SETTINGS_KEYS = {
    "DATABASE_URL",
    "DATABASE_ADMIN_URL",
    "REDIS_URL",
    "LUFY_ENV",
    "JWT_SECRET",
    "EMAIL_BACKEND",
    "EMAIL_FILE_DIR",
    "MEDIA_ROOT",
    "APP_URL",
}


def requeue_dead_workers_messages(deployment: Stack) -> None:
    """dramatiq's dead-worker recovery (dispatch.lua): every message in a dead worker's ack set
    goes back to the end of its queue. Call it only when no worker is alive."""
    client = sync_redis.Redis.from_url(deployment.redis.url)
    for key in client.scan_iter("dramatiq:__acks__.*"):
        queue = _queue_of(key.decode())
        for message_id in client.smembers(key):
            client.rpush(f"dramatiq:{queue}", message_id)
        client.delete(key)
    client.close()


def _queue_of(ack_key: str) -> str:
    # dramatiq:__acks__.<worker id>.<queue name>; queue names have no dots except ".DQ"/".XQ"
    # suffixes, and worker ids are uuids.
    rest = ack_key[len("dramatiq:__acks__.") :]
    return rest.split(".", 1)[1]


def job_states(deployment: Stack, queue: str) -> dict[str, int]:
    with deployment.admin() as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM lufy.jobs WHERE queue = %s GROUP BY status", [queue]
        ).fetchall()
    return {str(status): int(n) for status, n in rows}


def test_a_worker_killed_mid_queue_loses_no_job_and_sends_no_mail_twice(
    deployment: Stack,
) -> None:
    deployment.projector()
    worker = deployment.worker()
    # A new reactor starts at the head of the log: register only once it has its checkpoint.
    wait_for(lambda: has_checkpoint(deployment, "accounts_emails"), 30, "the e-mail reactor")
    emails = [f"kill-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(40)]
    asyncio.run(_register(deployment, emails[:20]))
    wait_for(lambda: job_states(deployment, "email-send").get("done", 0) >= 3, 30, "jobs to run")
    worker.signal(signal.SIGKILL)
    worker.proc.wait(timeout=10)
    asyncio.run(_register(deployment, emails[20:]))  # queued while no worker runs
    # The jobs the killed worker had taken stay `running` until their lease expires (the job's
    # time limit + 30 s) and the sweeper hands them out again: let that time pass at once.
    with deployment.admin() as conn:
        conn.execute(
            "UPDATE lufy.jobs SET lease_until = now() - interval '1 second', "
            "enqueued_at = now() - interval '1 hour', "
            "created_at = least(created_at, now() - interval '1 hour') "
            "WHERE status = 'running'"
        )
    # Messages the killed worker had prefetched but not started are still `pending` in the
    # ledger and sit in its ack set in Redis; dramatiq hands them back once the worker's
    # heartbeat is 60 s old, in a maintenance pass that runs on a random 0.1 % of broker
    # commands (minutes). Do what that pass does, now.
    requeue_dead_workers_messages(deployment)
    deployment.worker("worker-2")

    def all_done() -> bool:
        states = job_states(deployment, "email-send")
        return states.get("done", 0) >= len(emails) and sum(states.values()) == states["done"]

    wait_for(
        all_done,
        90,
        "every e-mail job to be done",
        on_timeout=lambda: job_states(deployment, "email-send"),
    )
    mail_dir = deployment.workdir / "mail"
    recipients: dict[str, int] = {}
    for path in mail_dir.glob("*.json"):
        text = path.read_text()
        for email in emails:
            if email in text:
                recipients[email] = recipients.get(email, 0) + 1
    assert sorted(recipients) == sorted(emails), "an e-mail was lost"
    assert set(recipients.values()) == {1}, "an e-mail was sent twice"
