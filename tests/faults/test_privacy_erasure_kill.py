"""Privacy: `lufy users forget` killed (SIGKILL) in the middle of its erasure transaction leaves
no half-state, and running it again erases the person completely."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from lufy.accounts.clients import ClientInfo
from lufy.accounts.errors import InvalidCredentialsError
from lufy.bootstrap import Container
from lufy.settings import Settings
from tests.helpers.accounts import create_user


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "DATABASE_ADMIN_URL": settings.DATABASE_ADMIN_URL,
        "REDIS_URL": settings.REDIS_URL,
        "JWT_SECRET": settings.JWT_SECRET or "",
        "LUFY_ENV": "test",
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": str(settings.EMAIL_FILE_DIR),
    }


def _forget(settings: Settings, user_id: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lufy.cli", "users", "forget", str(user_id), "--yes"],
        env=_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _state(admin: psycopg.AsyncConnection[Any], user_id: Any) -> tuple[Any, ...]:
    cur = await admin.execute(
        "SELECT (SELECT count(*) FROM lufy.events WHERE type = 'accounts.user_erased' "
        "        AND stream_id = %(s)s), "
        "(SELECT count(*) FROM lufy.data_keys WHERE subject_id = %(id)s), "
        "(SELECT count(*) FROM lufy.credentials WHERE user_id = %(id)s), "
        "(SELECT count(*) FROM lufy.sessions WHERE user_id = %(id)s AND revoked_at IS NULL), "
        "(SELECT erased_at IS NOT NULL FROM lufy.users WHERE id = %(id)s)",
        {"id": user_id, "s": str(user_id)},
    )
    row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def test_forget_killed_inside_its_transaction_changes_nothing_and_a_rerun_finishes(
    container: Container, settings: Settings, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    user = await create_user(container, display_name="Kilian Killed")
    before = await _state(admin_conn, user.id)
    assert before == (0, 1, 1, 1, False)

    # Hold the person's key row: the erasure transaction, having appended user_erased and
    # revoked the session, blocks on deleting it. Then it is killed.
    await admin_conn.set_autocommit(False)
    await admin_conn.execute(
        "SELECT 1 FROM lufy.data_keys WHERE subject_id = %s FOR UPDATE", [user.id]
    )
    process = _forget(settings, user.id)
    try:
        dbname = settings.DATABASE_URL.rsplit("/", 1)[1]
        async with await psycopg.AsyncConnection.connect(
            settings.DATABASE_ADMIN_URL, autocommit=True
        ) as watcher:
            for _ in range(600):
                cur = await watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM lufy.data_keys%%'",
                    [dbname],
                )
                row = await cur.fetchone()
                if row and row[0]:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the erasure never reached the key deletion")
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
        await admin_conn.rollback()
        await admin_conn.set_autocommit(True)
    assert process.returncode == -signal.SIGKILL

    # Nothing of the killed transaction remains: the person is whole and can sign in.
    assert await _state(admin_conn, user.id) == before
    service = container.accounts
    client = ClientInfo(user_agent="pytest", ip="127.0.0.1")
    assert await service.sign_in(email=user.email, password=user.password, client=client)

    rerun = _forget(settings, user.id)
    _out, err = await asyncio.to_thread(rerun.communicate, timeout=120)
    assert rerun.returncode == 0, err
    assert await _state(admin_conn, user.id) == (1, 0, 0, 0, True)
    with pytest.raises(InvalidCredentialsError):
        await service.sign_in(email=user.email, password=user.password, client=client)
