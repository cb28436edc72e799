"""Shared fixtures: every test gets its own database, cloned from a migrated template.

PostgreSQL and Redis are real. The admin connection is the current OS user over TCP with trust
auth (CI and dev machines), overridable with LUFY_TEST_ADMIN_URL.
"""

from __future__ import annotations

import getpass
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis as sync_redis
from psycopg import sql

from lufy.bootstrap import Container, bootstrap
from lufy.db import Database
from lufy.eventstore import EventStore
from lufy.migrate import migrate
from lufy.settings import Settings, load_settings

ADMIN_BASE = os.environ.get(
    "LUFY_TEST_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)
REDIS_BASE = os.environ.get("LUFY_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def admin_url(dbname: str) -> str:
    base = urlsplit(ADMIN_BASE)
    return urlunsplit(base._replace(path=f"/{dbname}"))


def app_url(dbname: str) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = f"lufy_app:lufy_app@{base.hostname}:{base.port or 5432}"
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


def _drop(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    # Unique per test process: several suites may run on one machine at once.
    name = f"lufy_tpl_{_worker()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_BASE, autocommit=True) as conn:
        _drop(conn, name)
    migrate(admin_url(name), app_url(name))
    yield name
    with psycopg.connect(ADMIN_BASE, autocommit=True) as conn:
        _drop(conn, name)


@pytest.fixture
def dbname(template_db: str) -> Iterator[str]:
    name = f"lufy_t_{_worker()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_BASE, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
        # Per-database role settings (the app roles' search_path) are not copied from a
        # template: give the clone the ones `lufy migrate` gave the template.
        for role, setting in conn.execute(
            "SELECT s.setrole::regrole::text, unnest(s.setconfig) FROM pg_db_role_setting s "
            "JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = %s AND s.setrole <> 0",
            [template_db],
        ).fetchall():
            key, _, value = setting.partition("=")
            values = sql.SQL(", ").join(sql.Literal(v.strip()) for v in value.split(","))
            conn.execute(
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
                    sql.SQL(role), sql.Identifier(name), sql.Identifier(key), values
                )
            )
    yield name
    with psycopg.connect(ADMIN_BASE, autocommit=True) as conn:
        _drop(conn, name)


@pytest.fixture(scope="session")
def redis_db_index() -> Iterator[int]:
    """A Redis database (1-15) leased to this test process alone, so suites running at the
    same time on one machine never flush each other's keys."""
    registry = sync_redis.Redis.from_url(f"{REDIS_BASE}/0")
    token = uuid.uuid4().hex
    for _ in range(600):
        for index in range(1, 16):
            if registry.set(f"lufy:test:lease:{index}", token, nx=True, ex=3600):
                yield index
                if registry.get(f"lufy:test:lease:{index}") == token.encode():
                    registry.delete(f"lufy:test:lease:{index}")
                registry.close()
                return
        time.sleep(1)
    raise RuntimeError("no free Redis database for tests (15 leased)")


@pytest.fixture
def redis_url(redis_db_index: int) -> Iterator[str]:
    url = f"{REDIS_BASE}/{redis_db_index}"
    client = sync_redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def settings(dbname: str, redis_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        DATABASE_URL=app_url(dbname),
        DATABASE_ADMIN_URL=admin_url(dbname),
        REDIS_URL=redis_url,
        LUFY_ENV="test",
        JWT_SECRET="test-secret-that-is-long-enough-for-hs256-0123456789",
        EMAIL_BACKEND="file",
        EMAIL_FILE_DIR=tmp_path / "mail",
        MEDIA_ROOT=tmp_path / "media",
        APP_URL="http://testserver.local",
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.DATABASE_URL, min_size=1, max_size=10)
    await database.open(wait=True)
    yield database
    await database.close()


@pytest.fixture
def store() -> EventStore:
    return EventStore()


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    c = bootstrap(settings)
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def app_conn(settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    yield conn
    await conn.close()


@pytest.fixture
async def admin_conn(settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(settings.DATABASE_ADMIN_URL, autocommit=True)
    yield conn
    await conn.close()
