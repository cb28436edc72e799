"""`lufy users create EMAIL --role ...` with the password on stdin, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

from psycopg import AsyncConnection

from lufy.settings import Settings


def run_cli(settings: Settings, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "DATABASE_ADMIN_URL": settings.DATABASE_ADMIN_URL,
        "REDIS_URL": settings.REDIS_URL,
        "JWT_SECRET": settings.JWT_SECRET or "",
        "LUFY_ENV": "test",
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": str(settings.EMAIL_FILE_DIR),
    }
    return subprocess.run(
        [sys.executable, "-m", "lufy.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


async def test_users_create_makes_a_verified_admin_who_can_sign_in(
    settings: Settings, admin_conn: AsyncConnection[Any]
) -> None:
    result = run_cli(
        settings,
        "users",
        "create",
        "Root@Example.com",
        "--role",
        "admin",
        stdin="an operator passphrase\n",
    )
    assert result.returncode == 0, result.stderr
    user_id = uuid.UUID(result.stdout.strip())
    cur = await admin_conn.execute(
        "SELECT email, role, email_verified, c.password_hash LIKE '$argon2id$%%' "
        "FROM lufy.users u JOIN lufy.credentials c ON c.user_id = u.id WHERE u.id = %s",
        [user_id],
    )
    assert await cur.fetchone() == ("root@example.com", "admin", True, True)
    cur = await admin_conn.execute(
        "SELECT data->>'via' FROM lufy.events WHERE type = 'accounts.user_registered'"
    )
    assert await cur.fetchall() == [("cli",)]


async def test_users_create_fails_with_one_line_on_a_duplicate_or_weak_password(
    settings: Settings,
) -> None:
    first = run_cli(
        settings,
        "users",
        "create",
        "x@example.com",
        "--role",
        "artist",
        stdin="a fine passphrase\n",
    )
    assert first.returncode == 0, first.stderr
    duplicate = run_cli(
        settings,
        "users",
        "create",
        "x@example.com",
        "--role",
        "artist",
        stdin="a fine passphrase\n",
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr.strip().splitlines()[-1]
    weak = run_cli(
        settings, "users", "create", "y@example.com", "--role", "artist", stdin="password\n"
    )
    assert weak.returncode == 1
    assert "password" in weak.stderr.strip().splitlines()[-1]


def test_users_create_with_a_bad_role_or_no_password_is_bad_usage(settings: Settings) -> None:
    assert (
        run_cli(
            settings,
            "users",
            "create",
            "z@example.com",
            "--role",
            "root",
            stdin="a fine passphrase\n",
        ).returncode
        == 2
    )
    assert (
        run_cli(
            settings, "users", "create", "z@example.com", "--role", "listener", stdin=""
        ).returncode
        == 2
    )
