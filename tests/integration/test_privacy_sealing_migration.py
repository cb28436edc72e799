"""Privacy: `lufy migrate` seals the personal fields of events written before sealing, once,
keeping ids, positions and order; projections rebuild to the same state."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from lufy.accounts.clients import ClientInfo
from lufy.accounts.errors import InvalidCredentialsError
from lufy.accounts.events import (
    EmailVerificationRequested,
    PasswordChanged,
    SignInFailed,
    UserRegistered,
)
from lufy.accounts.projections import PROJECTIONS
from lufy.bootstrap import Container
from lufy.eventstore import ANY, NO_STREAM, NewEvent
from lufy.migrate import migrate
from lufy.privacy.erasure import forget
from lufy.privacy.sealing import is_sealed, open_values_sync
from lufy.projections.inline import append_inline
from lufy.projections.rebuild import rebuild
from lufy.settings import Settings
from tests.conftest import admin_url
from tests.helpers.accounts import create_user, last_token

EMAIL = "old.timer@example.com"
NAME = "Olwen Oldtimer"
PASSWORD = "an old but long passphrase"

_LOG = (
    "SELECT global_position, event_id, transaction_id::text, stream_type, stream_id, "
    "stream_version, type, schema_version, metadata::text, occurred_at, recorded_at "
    "FROM lufy.events ORDER BY global_position"
)


async def _legacy_account(container: Container) -> tuple[uuid.UUID, str]:
    """An account as written before sealing: address, name and hashes in clear."""
    service = container.accounts
    old_hash = await service.passwords.hash_async("the first passphrase")
    new_hash = await service.passwords.hash_async(PASSWORD)
    user_id = uuid.uuid4()
    now = datetime.now(UTC)
    events = [
        UserRegistered(
            user_id=user_id,
            email=EMAIL,
            display_name=NAME,
            role="listener",
            password_hash=old_hash,
        ),
        EmailVerificationRequested(
            user_id=user_id,
            email=EMAIL,
            display_name=NAME,
            token_hash="f" * 64,
            sealed_token="x",
            expires_at=now + timedelta(hours=1),
        ),
        PasswordChanged(
            user_id=user_id, email=EMAIL, display_name=NAME, password_hash=new_hash, via="change"
        ),
        SignInFailed(user_id=user_id, email_hash="e" * 64, reason="wrong_password"),
    ]
    async with container.db.transaction(role="system") as conn:
        for n, event in enumerate(events):
            await append_inline(
                container.store,
                conn,
                "user",
                str(user_id),
                [NewEvent(event=event)],
                expected=NO_STREAM if n == 0 else ANY,
                projections=PROJECTIONS,
            )
        # Migration 0500 copied the hashes of existing accounts here, with their time.
        await conn.execute(
            "INSERT INTO lufy.credentials SELECT id, %s, coalesce(password_changed_at, "
            "created_at) FROM lufy.users WHERE id = %s",
            [new_hash, user_id],
        )
    return user_id, new_hash


def _dump(settings: Settings) -> bytes:
    dbname = settings.DATABASE_URL.rsplit("/", 1)[1]
    out = subprocess.run(
        ["pg_dump", "--no-owner", admin_url(dbname)], capture_output=True, check=True
    )
    return out.stdout


async def _snapshot(conn: psycopg.AsyncConnection[Any]) -> tuple[list[Any], dict[int, str]]:
    rows = await (await conn.execute(_LOG)).fetchall()
    data = await (
        await conn.execute("SELECT global_position, data::text FROM lufy.events")
    ).fetchall()
    return rows, dict(data)


async def _users(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
    cur = await conn.execute(
        "SELECT id, email, display_name, role, email_verified, version FROM lufy.users ORDER BY id"
    )
    return await cur.fetchall()


async def test_the_sealing_migration_seals_old_events_once_and_keeps_the_log_in_place(
    container: Container, settings: Settings, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    modern = await create_user(container, display_name="Newer Person")
    legacy_id, password_hash = await _legacy_account(container)
    # The e-mail job its verification request implied, recorded with the address in clear.
    cur = await admin_conn.execute(
        "SELECT event_id::text FROM lufy.events "
        "WHERE type = 'accounts.email_verification_requested' AND stream_id = %s",
        [str(legacy_id)],
    )
    job_key = str((await cur.fetchone() or [""])[0])
    mail = {"template": "verify_email", "to": EMAIL, "display_name": NAME, "sealed_token": "x"}
    await admin_conn.execute(
        "INSERT INTO lufy.jobs (actor, job_key, queue, payload, status) "
        "VALUES ('send_email', %s, 'email-send', %s, 'done')",
        [job_key, Jsonb(mail)],
    )
    rows_before, data_before = await _snapshot(admin_conn)
    users_before = await _users(admin_conn)

    report = migrate(settings.DATABASE_ADMIN_URL, settings.DATABASE_URL)
    assert report.sealing is not None
    assert (report.sealing.events_sealed, report.sealing.password_hashes_removed) == (4, 2)
    assert report.sealing.people == 1
    assert report.sealing.jobs_sealed == 1
    cur = await admin_conn.execute("SELECT payload FROM lufy.jobs WHERE job_key = %s", [job_key])
    payload = (await cur.fetchone() or [{}])[0]
    assert is_sealed(payload["to"])
    assert is_sealed(payload["display_name"])
    assert open_values_sync(settings.DATABASE_URL, payload) == mail

    rows_after, data_after = await _snapshot(admin_conn)
    # Ids, positions, transaction ids, streams, times and order as they were; one operator
    # event after them.
    assert rows_after[:-1] == rows_before
    assert rows_after[-1][3:5] == ("operations", "privacy_sealing")
    assert rows_after[-1][6] == "operations.personal_data_sealed"
    changed = {p for p in data_before if data_before[p] != data_after[p]}
    cur = await admin_conn.execute(
        "SELECT global_position, type, data FROM lufy.events WHERE stream_id = %s",
        [str(legacy_id)],
    )
    legacy = await cur.fetchall()
    assert changed == {p for p, _, _ in legacy}
    for _, type_name, data in legacy:
        assert "password_hash" not in data or data["password_hash"] is None
        for field in ("email", "display_name", "email_hash"):
            if field in data:
                assert is_sealed(data[field]), (type_name, field)
    text = " ".join(data_after.values())
    assert EMAIL not in text
    assert NAME not in text
    assert password_hash not in text
    assert str(modern.email) not in text

    # A second run changes nothing.
    again = migrate(settings.DATABASE_ADMIN_URL, settings.DATABASE_URL)
    assert again.sealing is None
    assert await _snapshot(admin_conn) == (rows_after, data_after)

    # Every accounts projection rebuilds to the same rows as before the rewrite.
    for projection in PROJECTIONS:
        result = await rebuild(
            settings.DATABASE_URL, projection, store=container.store, compare=True
        )
        assert result.swapped
        assert all(d == (0, 0) for d in result.differences.values()), result.differences
    assert await _users(admin_conn) == users_before
    tokens = await container.accounts.sign_in(
        email=EMAIL, password=PASSWORD, client=ClientInfo(user_agent="pytest", ip="127.0.0.1")
    )
    assert tokens.user.display_name == NAME

    # An account from before sealing can now be forgotten from the log as well.
    await forget(container, legacy_id, via="cli")
    dump = _dump(settings)
    for secret in (EMAIL, NAME, password_hash):
        assert secret.encode() not in dump


async def test_password_changes_by_processes_of_the_previous_version_win_and_migrate_keeps_them(
    container: Container, settings: Settings, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    """During a rolling deploy, a process of the version before sealing changes or removes
    passwords in users.password_hash only: the newer of it and lufy.credentials counts."""
    service = container.accounts
    client = ClientInfo(user_agent="pytest", ip="127.0.0.1")
    user = await create_user(container, password="the first passphrase")
    newer = await service.passwords.hash_async("the second passphrase")

    async def signs_in(password: str) -> bool:
        try:
            await service.sign_in(email=user.email, password=password, client=client)
        except InvalidCredentialsError:
            return False
        return True

    async def credentials() -> Any:
        cur = await admin_conn.execute(
            "SELECT password_hash FROM lufy.credentials WHERE user_id = %s", [user.id]
        )
        row = await cur.fetchone()
        return row[0] if row else None

    # The old version's projection writes the hash and the event's time to the users row.
    await admin_conn.execute(
        "UPDATE lufy.users SET password_hash = %s, "
        "password_changed_at = now() + interval '1 second' WHERE id = %s",
        [newer, user.id],
    )
    assert await signs_in("the second passphrase")
    assert not await signs_in("the first passphrase")
    migrate(settings.DATABASE_ADMIN_URL, settings.DATABASE_URL)
    assert await credentials() == newer
    assert await signs_in("the second passphrase")

    # An old process removes the password (a magic link claimed the address).
    await admin_conn.execute(
        "UPDATE lufy.users SET password_hash = NULL, "
        "password_changed_at = now() + interval '2 seconds' WHERE id = %s",
        [user.id],
    )
    assert not await signs_in("the second passphrase")
    migrate(settings.DATABASE_ADMIN_URL, settings.DATABASE_URL)
    assert await credentials() is None
    assert not await signs_in("the second passphrase")

    # A password set by this version again wins over the old row.
    principal = service.access_tokens.verify(user.access_token)
    await service.reset_password(
        await _reset_token(container, user.email), "a third long passphrase"
    )
    assert await signs_in("a third long passphrase")
    assert principal.user_id == user.id


async def _reset_token(container: Container, email: str) -> str:
    await container.accounts.forgot_password(email)
    return await last_token(container, email, "Reset")
