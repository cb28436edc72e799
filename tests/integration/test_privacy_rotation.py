"""Privacy: rotating DATA_KEY_SECRET. Keys wrapped by a previous secret open while it is listed
in DATA_KEY_PREVIOUS_SECRETS; `lufy migrate` wraps every key by the new one, once."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from lufy.bootstrap import Container
from lufy.migrate import migrate
from lufy.privacy import sealing
from lufy.privacy.sealing import Keyring, SealingError, secret_id
from lufy.settings import Settings

OLD = "o" * 40
NEW = "n" * 40


@pytest.fixture(autouse=True)
def _restore_sealing() -> Any:
    yield
    sealing.configure(None)


async def _seal(container: Container, text: str) -> str:
    async with container.db.transaction(role="system") as conn:
        return await Keyring().seal(conn, uuid.uuid4(), text)


async def _open(container: Container, value: str) -> str:
    async with container.db.transaction(role="system") as conn:
        return await Keyring().open(conn, value)


async def test_rotating_the_master_secret_rewraps_every_data_key_once(
    container: Container, settings: Settings, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    sealing.configure(None)
    dev = await _seal(container, "sealed under the dev key")
    sealing.configure(OLD)
    old = await _seal(container, "sealed under the old secret")

    sealing.configure(NEW)
    with pytest.raises(SealingError, match="DATA_KEY_PREVIOUS_SECRETS"):
        await _open(container, old)
    sealing.configure(NEW, f" {OLD} ,")
    assert await _open(container, old) == "sealed under the old secret"
    new = await _seal(container, "sealed under the new secret")

    report = migrate(settings.DATABASE_ADMIN_URL, settings.DATABASE_URL)
    assert report.rewrapped is not None
    assert report.rewrapped.rewrapped >= 2  # the old secret's key, the dev key (and others')
    assert report.rewrapped.from_database >= 1
    assert report.rewrapped.unopenable == 0
    cur = await admin_conn.execute(
        "SELECT count(*) FILTER (WHERE wrapped_by <> 'secret' OR secret_id <> %s), count(*) "
        "FROM lufy.data_keys",
        [secret_id(NEW)],
    )
    left, total = await cur.fetchone() or (None, None)
    assert (left, total) != (None, None)
    assert left == 0
    cur = await admin_conn.execute(
        "SELECT data->>'rewrapped' FROM lufy.events WHERE type = 'operations.data_keys_rewrapped'"
    )
    assert [int(r[0]) for r in await cur.fetchall()] == [report.rewrapped.rewrapped]

    # The old secret can go: everything opens under the new one alone.
    sealing.configure(NEW)
    for value, text in ((dev, "dev key"), (old, "old secret"), (new, "new secret")):
        assert await _open(container, value) == f"sealed under the {text}"
    again = migrate(settings.DATABASE_ADMIN_URL, settings.DATABASE_URL)
    assert again.rewrapped is None


async def test_a_key_wrapped_by_an_unlisted_secret_is_reported_and_left_alone(
    container: Container, settings: Settings
) -> None:
    sealing.configure(OLD)
    value = await _seal(container, "kept")
    sealing.configure(NEW)
    said: list[str] = []
    report = migrate(settings.DATABASE_ADMIN_URL, settings.DATABASE_URL, on_step=said.append)
    assert report.rewrapped is not None
    assert report.rewrapped.unopenable == 1
    assert any("DATA_KEY_PREVIOUS_SECRETS" in line for line in said)
    sealing.configure(NEW, OLD)
    assert await _open(container, value) == "kept"
