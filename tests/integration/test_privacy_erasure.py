# ruff: noqa: ASYNC240  (tests read small generated files synchronously)
"""Privacy: personal fields sealed per person, erasure by crypto-shredding (HTTP and CLI)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import AsyncTestClient

from lufy.accounts.projections import PROJECTIONS
from lufy.analytics.events import ANALYTICS_TYPES
from lufy.analytics.importer import import_lines
from lufy.analytics.ingest import Ingestor
from lufy.analytics.projections import AnalyticsProjection
from lufy.bootstrap import Container, bootstrap
from lufy.catalog.processing import process_track
from lufy.privacy.erasure import forget
from lufy.privacy.sealing import ERASED, Keyring, is_sealed
from lufy.projections.discovery import all_projections
from lufy.projections.reactors import Reactor
from lufy.projections.rebuild import rebuild
from lufy.settings import Settings
from lufy.testing.analytics import LocalProjector, insert_artist, insert_track
from lufy.web.app import create_app
from tests.conftest import admin_url
from tests.helpers.accounts import create_user, deliver_account_emails, inbox, token_from
from tests.helpers.dashboards import artist_dashboards
from tests.helpers.media import make_tone

PASSWORD = "a long and unusual passphrase"
NAME = "Zephyrine Quokkabottom"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(bootstrap(settings))) as c:
        yield c


def _email() -> str:
    return f"zeph-{uuid.uuid4().hex[:10]}@example.com"


def _encodings(text: str) -> list[bytes]:
    raw = text.encode()
    return [
        raw,
        json.dumps(text).encode()[1:-1],
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
    ]


def _dump(settings: Settings) -> bytes:
    dbname = settings.DATABASE_URL.rsplit("/", 1)[1]
    out = subprocess.run(
        ["pg_dump", "--no-owner", admin_url(dbname)], capture_output=True, check=True
    )
    return out.stdout


async def _events_text(container: Container, user_id: uuid.UUID) -> str:
    async with container.db.connection() as conn:
        cur = await conn.execute(
            "SELECT string_agg(data::text, ' ') FROM lufy.events WHERE stream_id = %s",
            [str(user_id)],
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row[0])


async def _sign_up(client: AsyncTestClient[Any], email: str) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, "display_name": NAME, "role": "listener"}
    return await client.post("/api/auth/sign-up", json=body)


async def _sign_in(client: AsyncTestClient[Any], email: str) -> httpx.Response:
    return await client.post("/api/auth/sign-in", json={"email": email, "password": PASSWORD})


async def test_a_new_account_keeps_its_address_name_and_password_hash_out_of_the_log(
    container: Container, client: AsyncTestClient[Any]
) -> None:
    email = _email()
    created = await _sign_up(client, email)
    assert created.status_code == 201, created.text
    user_id = uuid.UUID(created.json()["user"]["id"])
    text = await _events_text(container, user_id)
    assert email not in text
    assert NAME not in text
    assert "argon2" not in text
    async with container.db.connection() as conn:
        cur = await conn.execute(
            "SELECT data->>'email', data->>'display_name' FROM lufy.events "
            "WHERE type = 'accounts.user_registered' AND stream_id = %s",
            [str(user_id)],
        )
        sealed = await cur.fetchone()
    assert sealed is not None
    assert all(is_sealed(v) for v in sealed)
    # The read model, the e-mail and signing in still see the plain values.
    signed = await _sign_in(client, email)
    assert signed.status_code == 200, signed.text
    assert signed.json()["user"]["email"] == email
    assert signed.json()["user"]["display_name"] == NAME
    await deliver_account_emails(container)
    [message] = inbox(container, email)
    assert message["to"] == email
    assert NAME in message["text"]


async def test_a_sealed_field_whose_key_is_destroyed_opens_as_erased(
    container: Container,
) -> None:
    keyring = Keyring()
    subject = uuid.uuid4()
    async with container.db.transaction(role="system") as conn:
        sealed = await keyring.seal(conn, subject, "ada@example.com")
        assert await keyring.open(conn, sealed) == "ada@example.com"
        assert await keyring.destroy(conn, subject)
        assert await keyring.open(conn, sealed) == ERASED
        assert not await keyring.destroy(conn, subject)
        assert await keyring.open(conn, "not sealed") == "not sealed"


async def test_deleting_the_account_with_its_password_erases_the_person_for_good(
    container: Container, client: AsyncTestClient[Any]
) -> None:
    user = await create_user(container, email=_email(), display_name=NAME, password=PASSWORD)
    other = await client.post("/api/auth/sign-in", json={"email": user.email, "password": PASSWORD})
    await client.post("/api/auth/magic-link", json={"email": user.email})
    await deliver_account_emails(container)
    link = token_from(inbox(container, user.email)[-1])

    wrong = await client.request(
        "DELETE", "/api/auth/account", json={"password": "not the password"}, headers=user.headers
    )
    assert wrong.status_code == 401, wrong.text
    assert wrong.headers["content-type"].startswith("application/problem+json")
    erased = await client.request(
        "DELETE", "/api/auth/account", json={"password": PASSWORD}, headers=user.headers
    )
    assert erased.status_code == 202, erased.text

    assert (await _sign_in(client, user.email)).status_code == 401
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": other.json()["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (await client.get("/api/auth/session", headers=user.headers)).status_code == 401
    assert (await client.post("/api/auth/magic-link/verify", json={"token": link})).status_code in (
        400,
        401,
    )
    async with container.db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT email, display_name, erased_at IS NOT NULL FROM lufy.users WHERE id = %s",
            [user.id],
        )
        assert await cur.fetchone() == (f"erased:{user.id}", "[erased]", True)
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM lufy.credentials WHERE user_id = %(id)s), "
            "(SELECT count(*) FROM lufy.data_keys WHERE subject_id = %(id)s), "
            "(SELECT count(*) FROM lufy.sessions WHERE user_id = %(id)s AND revoked_at IS NULL)",
            {"id": user.id},
        )
        assert await cur.fetchone() == (0, 0, 0)
    # No e-mail goes out to an erased person, even for a link asked before.
    before = len(inbox(container, user.email))
    await client.post("/api/auth/magic-link", json={"email": user.email})
    await deliver_account_emails(container)
    assert len(inbox(container, user.email)) == before


async def test_erasing_asks_for_a_proof_and_a_passwordless_account_gives_a_fresh_magic_link(
    container: Container, client: AsyncTestClient[Any]
) -> None:
    user = await create_user(container, email=_email(), password=PASSWORD)
    missing = await client.request("DELETE", "/api/auth/account", json={}, headers=user.headers)
    assert missing.status_code in (400, 422)
    assert "password" in missing.json()["detail"]
    unknown = await client.request(
        "DELETE", "/api/auth/account", json={"pasword": PASSWORD}, headers=user.headers
    )
    assert unknown.status_code == 400, unknown.text
    anonymous = await client.request("DELETE", "/api/auth/account", json={"password": PASSWORD})
    assert anonymous.status_code == 401

    # An unverified sign-up claimed by a magic link has no password any more.
    email = _email()
    await _sign_up(client, email)
    await client.post("/api/auth/magic-link", json={"email": email})
    await deliver_account_emails(container)
    claimed = await client.post(
        "/api/auth/magic-link/verify", json={"token": token_from(inbox(container, email)[-1])}
    )
    assert claimed.status_code == 200, claimed.text
    headers = {"Authorization": f"Bearer {claimed.json()['access_token']}"}
    no_token = await client.request(
        "DELETE", "/api/auth/account", json={"password": PASSWORD}, headers=headers
    )
    assert no_token.status_code in (400, 422)
    assert "token" in no_token.json()["detail"]
    await client.post("/api/auth/magic-link", json={"email": email})
    await deliver_account_emails(container)
    fresh = token_from(inbox(container, email)[-1])
    erased = await client.request(
        "DELETE", "/api/auth/account", json={"token": fresh}, headers=headers
    )
    assert erased.status_code == 202, erased.text


async def test_forgetting_twice_changes_nothing_the_second_time(container: Container) -> None:
    user = await create_user(container, email=_email(), display_name=NAME)
    first = await forget(container, user.id, via="cli")
    second = await forget(container, user.id, via="cli")
    assert (first.erased_now, second.erased_now) == (True, False)
    async with container.db.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM lufy.events WHERE type = 'accounts.user_erased' "
            "AND stream_id = %s",
            [str(user.id)],
        )
        assert await cur.fetchone() == (1,)


async def test_after_forgetting_a_dump_of_the_database_and_the_media_hold_nothing_personal(
    container: Container,
    client: AsyncTestClient[Any],
    settings: Settings,
    tmp_path: Path,
    admin_conn: psycopg.AsyncConnection[Any],
) -> None:
    email = _email()
    body = {"email": email, "password": PASSWORD, "display_name": NAME, "role": "artist"}
    created = await client.post("/api/auth/sign-up", json=body)
    assert created.status_code == 201, created.text
    artist_id = uuid.UUID(created.json()["user"]["id"])
    await container.accounts.request_magic_link(email)
    await deliver_account_emails(container)
    signed = await _sign_in(client, email)
    headers = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    await client.post(
        "/api/auth/password/change",
        json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        headers=headers,
    )
    async with container.db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT password_hash FROM lufy.credentials WHERE user_id = %s", [artist_id]
        )
        row = await cur.fetchone()
    assert row is not None
    password_hash = str(row[0])
    wrong = await client.post("/api/auth/sign-in", json={"email": email, "password": "nope nope"})
    assert wrong.status_code == 401
    # A published, processed track with its media in storage.
    tone = make_tone(tmp_path / "tone.mp3", seconds=3)
    ticket = (
        await client.post(
            "/api/music/uploads",
            json={
                "filename": "tone.mp3",
                "content_type": "audio/mpeg",
                "size_bytes": tone.stat().st_size,
                "title": "Tone",
            },
            headers=headers,
        )
    ).json()
    url = ticket["url"].removeprefix("http://testserver.local")
    await client.put(url, content=tone.read_bytes(), headers=ticket["headers"])
    await client.post(f"/api/music/uploads/{ticket['upload_id']}/complete", headers=headers)
    service = container.catalog
    await process_track(service, uuid.UUID(ticket["track_id"]), "j")
    published = await client.post(
        f"/api/music/tracks/{ticket['track_id']}/publish", headers=headers
    )
    assert published.status_code == 200, published.text
    assert service.storage.list(f"hls/{ticket['track_id']}/")
    # The person also listens, signed in, to another artist's track (a grant, playback and a
    # like sent by the app, with the client's anonymous id) and has plays imported by id.
    anonymous_id = f"anon-{uuid.uuid4().hex}"
    projector = LocalProjector(container.db, container.store)
    other_track = await _listen(container, client, admin_conn, headers, artist_id, anonymous_id)
    await projector.run()
    before = await _dashboards(container, admin_conn)
    dump = _dump(settings)
    assert email.encode() in dump  # the read model holds it while the person is here
    assert anonymous_id.encode() not in dump  # sealed from the start

    report = await forget(container, artist_id, via="cli")
    assert report.tracks_deleted == 1
    await projector.run()
    assert await _dashboards(container, admin_conn) == before

    dump = _dump(settings)
    email_hash = hashlib.sha256(email.encode()).hexdigest()
    for secret in (email, NAME, password_hash, email_hash, anonymous_id, f"u:{artist_id}"):
        for encoded in _encodings(secret):
            assert encoded not in dump, (secret, encoded)
    # The raw listener id: the user id as the listener of analytics events and stream grants
    # (data and metadata), and anywhere in the analytics read models.
    listening = _listening_rows(dump)
    assert len(listening) >= 6
    assert any(str(other_track).encode() in row for row in listening)
    for encoded in _encodings(str(artist_id)) + _encodings(artist_id.hex):
        for row in listening:
            assert encoded not in row, (encoded, row)
    assert service.storage.list(f"hls/{ticket['track_id']}/") == []
    assert service.storage.list(f"uploads/{ticket['track_id']}/") == []
    for path in Path(settings.MEDIA_ROOT).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert email.encode() not in data
            assert NAME.encode() not in data
    track = await client.get(f"/api/music/tracks/{ticket['track_id']}")
    assert track.status_code == 404
    # Every read model rebuilds from the log after the erasure.
    for projection in all_projections():
        if isinstance(projection, Reactor):
            continue
        result = await rebuild(
            settings.DATABASE_URL, projection, store=container.store, compare=True
        )
        assert result.swapped, projection.name


async def _listen(
    container: Container,
    client: AsyncTestClient[Any],
    admin_conn: psycopg.AsyncConnection[Any],
    headers: dict[str, str],
    user_id: uuid.UUID,
    anonymous_id: str,
) -> uuid.UUID:
    """A grant, an app's playback and like with the grant, and an imported play, all by
    `user_id` of another artist's track."""
    other = await insert_artist(admin_conn)
    track = await insert_track(admin_conn, other)
    grant = await client.get(f"/api/music/tracks/{track}/stream", headers=headers)
    assert grant.status_code == 200, grant.text
    grant_id = grant.json()["grant_id"]
    now = datetime.now(UTC)
    session = str(uuid.uuid4())
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "type": type_,
            "occurred_at": (now + timedelta(seconds=n)).isoformat(),
            "session_id": session,
            "anonymous_id": anonymous_id,
            "track_id": str(track),
            "grant_id": grant_id,
            "listened_ms": ms,
        }
        for n, (type_, ms) in enumerate(
            (("playback.started", 0), ("playback.progress", 0), ("track.liked", None))
        )
    ]
    sent = await client.post("/api/analytics/events", json={"events": events}, headers=headers)
    assert sent.status_code == 202, sent.text
    assert sent.json()["accepted"] == 3, sent.text
    line = {
        "event_id": str(uuid.uuid4()),
        "type": "playback.completed",
        "occurred_at": (now - timedelta(days=2)).isoformat(),
        "session_id": str(uuid.uuid4()),
        "track_id": str(track),
        "listener_id": str(user_id),
        "anonymous_id": anonymous_id,
        "listened_ms": 180_000,
    }
    ingestor = Ingestor(container.db, container.store, sample_rate=1.0)
    imported = await import_lines(ingestor, io.StringIO(json.dumps(line) + "\n"))
    assert imported.accepted == 1, imported.rejected
    return track


async def _dashboards(container: Container, admin_conn: psycopg.AsyncConnection[Any]) -> list[Any]:
    """Every artist's overview and tracks for the last 7 days, as an admin sees them."""
    admin = await create_user(container, role="admin")
    cur = await admin_conn.execute("SELECT id FROM lufy.users WHERE role = 'artist' ORDER BY id")
    artists = [row[0] for row in await cur.fetchall()]
    return await artist_dashboards(container, admin.headers, artists)


_LISTENING_TYPES = {t.encode() for t in (*ANALYTICS_TYPES, "catalog.stream_authorized")}


def _listening_rows(dump: bytes) -> list[bytes]:
    """The rows of the dump that record listening: analytics events and stream grants of the
    log, and every row of the analytics projection's tables and of the `analytics` schema."""
    tables = {f"{t} ".encode() for t in AnalyticsProjection.tables}
    rows: list[bytes] = []
    table = b""
    for line in dump.splitlines():
        if line.startswith(b"COPY "):
            table = line.split(b" ")[1]
            continue
        if line == b"\\.":
            table = b""
            continue
        if not table:
            continue
        name = table.rsplit(b".", 1)[-1] + b" "
        if table == b"lufy.events":
            if _LISTENING_TYPES & set(line.split(b"\t")):
                rows.append(line)
        elif name in tables or table.startswith(b"analytics."):
            rows.append(line)
    return rows


async def test_rebuilding_the_accounts_read_models_after_an_erasure_shows_the_person_erased(
    container: Container,
) -> None:
    kept = await create_user(container, email=_email(), display_name="Kept Person")
    gone = await create_user(container, email=_email(), display_name=NAME)
    await forget(container, gone.id, via="cli")
    for projection in PROJECTIONS:
        result = await rebuild(
            container.settings.DATABASE_URL, projection, store=container.store, compare=True
        )
        assert result.swapped
        assert all(diff == (0, 0) for diff in result.differences.values()), result.differences
    async with container.db.transaction(role="system") as conn:
        cur = await conn.execute(
            "SELECT id, email, display_name FROM lufy.users ORDER BY email", []
        )
        rows = await cur.fetchall()
    assert (kept.id, kept.email, "Kept Person") in rows
    assert (gone.id, f"erased:{gone.id}", "[erased]") in rows


async def test_keys_wrapped_by_one_secret_do_not_open_under_another(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lufy.privacy import sealing

    monkeypatch.setattr(sealing, "_configured", "a" * 40)
    keyring = Keyring()
    subject = uuid.uuid4()
    async with container.db.transaction(role="system") as conn:
        sealed = await keyring.seal(conn, subject, "ada@example.com")
        cur = await conn.execute(
            "SELECT wrapped_by FROM lufy.data_keys WHERE subject_id = %s", [subject]
        )
        assert await cur.fetchone() == ("secret",)
        assert await keyring.open(conn, sealed) == "ada@example.com"
        monkeypatch.setattr(sealing, "_configured", "b" * 40)
        with pytest.raises(sealing.SealingError, match="DATA_KEY_SECRET"):
            await keyring.open(conn, sealed)
