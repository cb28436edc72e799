"""Several machines, simulated on one: 2 API processes behind a balancer, 2 projectors and 2
workers on one database and one Redis. Ingestion, sign-ups and uploads run while one process
of each kind is killed with SIGKILL; afterwards nothing acknowledged is lost, nothing is
applied or sent twice, and every projection catches up under the survivors."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis as sync_redis

from tests.faults.harness import BROWSER_UA, LufyProcess, Stack, free_port, wait_for
from tests.faults.proxy import balancer
from tests.faults.test_kill import has_checkpoint, job_states, pending
from tests.helpers.media import make_tone

pytestmark = pytest.mark.slow

PASSWORD = "a many machines password 42"
UPLOADS = 3


def retried(call: Any, ok: Any, what: str, attempts: int = 40) -> httpx.Response:
    """A client that retries what failed, with the same request: idempotent by design."""
    last: object = None
    for _ in range(attempts):
        try:
            response = call()
            if ok(response):
                return response
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise AssertionError(f"{what} kept failing: {last}")


def requeue_messages_of_dead_workers(url: str, alive_for: float = 3.0) -> int:
    """What dramatiq's maintenance does once a worker's heartbeat is 60 s old (on 0.1 % of
    broker commands): hand the messages in its ack sets back to their queues. Here a worker is
    dead when its heartbeat is `alive_for` seconds old (the survivor beats every second)."""
    client = sync_redis.Redis.from_url(url)
    now_ms = int(time.time() * 1000)
    dead = {
        member.decode()
        for member in client.zrangebyscore(
            "dramatiq:__heartbeats__", 0, now_ms - int(alive_for * 1000)
        )
    }
    moved = 0
    for key in client.scan_iter("dramatiq:__acks__.*"):
        worker_id, _, queue = key.decode()[len("dramatiq:__acks__.") :].partition(".")
        if worker_id not in dead:
            continue
        for message_id in client.smembers(key):
            client.rpush(f"dramatiq:{queue}", message_id)
            moved += 1
        client.delete(key)
    client.close()
    return moved


def test_two_of_each_process_lose_nothing_and_double_nothing_when_one_of_each_is_killed(
    deployment: Stack, tmp_path: Any
) -> None:
    lb_port = free_port()
    deployment.port = lb_port  # APP_URL (upload URLs) names the balancer
    deployment.env["APP_URL"] = f"http://127.0.0.1:{lb_port}"
    api_ports = [free_port(), free_port()]
    apis = [
        deployment.start(f"api-{n}", "serve", "--port", str(port))
        for n, port in enumerate(api_ports)
    ]
    for port, process in zip(api_ports, apis, strict=True):

        def answers(port: int = port, process: LufyProcess = process) -> bool:
            assert process.alive(), process.tail()
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200

        wait_for(answers, 60, f"api on {port}")
    projectors = [deployment.projector(f"projector-{n}") for n in range(2)]
    workers = [deployment.worker(f"worker-{n}") for n in range(2)]
    wait_for(lambda: has_checkpoint(deployment, "accounts_emails"), 30, "the e-mail reactor")

    tone = make_tone(tmp_path / "tone.mp3", seconds=3.0).read_bytes()
    sessions: list[str] = []
    listeners: list[str] = []
    tracks: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    spoof = iter(range(1, 10**6))

    with balancer([f"http://127.0.0.1:{p}" for p in api_ports], lb_port):
        client = httpx.Client(
            base_url=deployment.base_url, timeout=30, headers={"user-agent": BROWSER_UA}
        )
        artist_email = f"artist-{uuid.uuid4().hex[:6]}@example.com"
        retried(
            lambda: client.post(
                "/api/auth/sign-up",
                json={
                    "email": artist_email,
                    "password": PASSWORD,
                    "display_name": "Many",
                    "role": "artist",
                },
            ),
            lambda r: r.status_code in (201, 409),
            "artist sign-up",
        )
        signed_in = retried(
            lambda: client.post(
                "/api/auth/sign-in", json={"email": artist_email, "password": PASSWORD}
            ),
            lambda r: r.status_code == 200,
            "artist sign-in",
        )
        artist = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        artist_id = signed_in.json()["user"]["id"]
        with deployment.admin() as conn:
            played = uuid.uuid4()
            conn.execute(
                "INSERT INTO lufy.tracks (id, artist_id, title, status, duration_ms, published) "
                "VALUES (%s, %s, 'Many Machines', 'ready', 180000, true)",
                [played, artist_id],
            )

        def ingest_forever() -> None:
            with httpx.Client(
                base_url=deployment.base_url, timeout=30, headers={"user-agent": BROWSER_UA}
            ) as own:
                while not stop.is_set():
                    session = uuid.uuid4().hex
                    common = {
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "session_id": session,
                        "anonymous_id": f"l-{session[:6]}",
                        "track_id": str(played),
                    }
                    body = {
                        "events": [
                            {**common, "event_id": str(uuid.uuid4()), "type": t, "listened_ms": ms}
                            for t, ms in (
                                ("playback.started", 0),
                                ("playback.progress", 31000),
                                ("playback.completed", 60000),
                            )
                        ]
                    }
                    retried(
                        lambda body=body: own.post(
                            "/api/analytics/events",
                            json=body,
                            headers={"x-forwarded-for": f"10.1.{next(spoof) % 250}.7"},
                        ),
                        lambda r: r.status_code == 202,
                        "ingestion",
                    )
                    with lock:
                        sessions.append(session)

        def upload(n: int) -> None:
            created = retried(
                lambda: client.post(
                    "/api/music/uploads",
                    json={
                        "filename": f"tone-{n}.mp3",
                        "content_type": "audio/mpeg",
                        "size_bytes": len(tone),
                        "title": f"Tone {n}",
                    },
                    headers=artist,
                ),
                lambda r: r.status_code == 201,
                "upload ticket",
            ).json()
            retried(
                lambda: client.put(created["url"], content=tone, headers=created["headers"]),
                lambda r: r.status_code == 200,
                "upload body",
            )
            retried(
                lambda: client.post(
                    f"/api/music/uploads/{created['upload_id']}/complete", headers=artist
                ),
                lambda r: r.status_code in (200, 202, 409),
                "upload completion",
            )
            tracks.append(created["track_id"])

        def sign_up(n: int) -> None:
            email = f"listener-{n}-{uuid.uuid4().hex[:6]}@example.com"
            retried(
                lambda: client.post(
                    "/api/auth/sign-up",
                    json={
                        "email": email,
                        "password": PASSWORD,
                        "display_name": "L",
                        "role": "listener",
                    },
                    headers={"x-forwarded-for": f"10.2.{n}.9"},
                ),
                # A retry after a sign-up whose answer was lost finds the account: 409.
                lambda r: r.status_code in (201, 409),
                "listener sign-up",
            )
            listeners.append(email)

        threads = [threading.Thread(target=ingest_forever) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            for n in range(4):
                sign_up(n)
            upload(0)
            wait_for(lambda: len(sessions) >= 20, 60, "ingestion under way")
            # One of each kind dies at once, mid-run.
            for victim in (apis[0], projectors[0], workers[0]):
                victim.signal(signal.SIGKILL)
            for n in range(4, 8):
                sign_up(n)
            for n in range(1, UPLOADS):
                upload(n)
            count = len(sessions)
            wait_for(lambda: len(sessions) >= count + 30, 90, "ingestion after the kills")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=120)

        # Jobs the killed worker held stay `running` until their lease expires (time limit +
        # 30 s) and messages it had prefetched sit in its ack set until dramatiq's maintenance
        # notices (60 s, on a random 0.1 % of commands): let that time pass at once.
        with deployment.admin() as conn:
            conn.execute(
                "UPDATE lufy.jobs SET lease_until = now() - interval '1 second', "
                "enqueued_at = now() - interval '1 hour', "
                "created_at = least(created_at, now() - interval '1 hour') "
                "WHERE status = 'running'"
            )
        time.sleep(3.5)
        requeue_messages_of_dead_workers(deployment.redis.url)

        for name in ("analytics", "accounts_emails"):
            wait_for(
                lambda name=name: pending(deployment, name) == 0,
                120,
                f"{name} to catch up under the surviving projector",
                on_timeout=deployment.logs,
            )

        def all_jobs_done() -> bool:
            states = {q: job_states(deployment, q) for q in ("email-send", "media-processing")}
            return all(sum(s.values()) == s.get("done", 0) for s in states.values())

        wait_for(all_jobs_done, 180, "every job done", on_timeout=deployment.logs)

        overview = retried(
            lambda: client.get("/api/dashboard/overview", params={"range": "7d"}, headers=artist),
            lambda r: r.status_code == 200,
            "dashboard",
        ).json()
        statuses = {
            t: retried(
                lambda t=t: client.get(f"/api/music/tracks/{t}", headers=artist),
                lambda r: r.status_code == 200,
                "track",
            ).json()["status"]
            for t in tracks
        }
        client.close()

    assert [p.alive() for p in (apis[0], projectors[0], workers[0])] == [False] * 3
    with deployment.admin() as conn:
        applied = conn.execute(
            "SELECT count(*), count(DISTINCT session_id), coalesce(sum(listened_ms), 0) "
            "FROM analytics.playback_sessions WHERE session_id = ANY(%s)",
            [sessions],
        ).fetchone()
        transcoded = conn.execute(
            "SELECT stream_id, count(*) FROM lufy.events WHERE type = 'catalog.track_transcoded' "
            "GROUP BY stream_id"
        ).fetchall()
    assert applied == (len(sessions), len(sessions), 60000 * len(sessions)), "a session was lost"
    # The rollups the dashboard sums double on a double application.
    assert overview["listen_seconds"] == 60 * len(sessions)
    assert statuses == dict.fromkeys(tracks, "ready")
    assert len(tracks) == UPLOADS
    assert sorted(n for _, n in transcoded) == [1] * UPLOADS, "a track was transcoded twice"
    mail = deployment.workdir / "mail"
    recipients: dict[str, int] = {}
    for path in mail.glob("*.json"):
        text = path.read_text()
        for email in [*listeners, artist_email]:
            if email in text:
                recipients[email] = recipients.get(email, 0) + 1
    assert sorted(recipients) == sorted([*listeners, artist_email]), "an e-mail was lost"
    assert set(recipients.values()) == {1}, "an e-mail was sent twice"
