"""Incremental extraction: analytics.safe_position() and `lufy events export` lose nothing.

A transaction that takes its positions first and commits last is what breaks an extract keyed
on `global_position`; the tests hold one open across an extract.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
from click.testing import CliRunner

from lufy.analytics.export import export_events
from lufy.bootstrap import Container
from lufy.cli import cli
from lufy.eventstore import NO_STREAM, EventStore, NewEvent
from lufy.operations.events import ProjectionRebuilt
from lufy.settings import Settings
from tests.helpers.accounts import create_user
from tests.helpers.http import api_client


async def append_one(conn: psycopg.AsyncConnection[Any], store: EventStore, label: str) -> None:
    event = ProjectionRebuilt(projection=label, version=1, events_applied=0)
    await store.append(conn, "operations", label, [NewEvent(event=event)], expected=NO_STREAM)


async def labels_of(conn: psycopg.AsyncConnection[Any], rows: list[tuple[Any, ...]]) -> list[str]:
    cur = await conn.execute(
        "SELECT stream_id FROM lufy.events WHERE global_position = ANY(%s) "
        "ORDER BY transaction_id, global_position",
        [[r[0] for r in rows]],
    )
    return [str(r[0]) for r in await cur.fetchall()]


async def test_a_global_position_extract_loses_a_late_commit_and_the_safe_query_does_not(
    settings: Settings, store: EventStore, admin_conn: psycopg.AsyncConnection[Any]
) -> None:
    early = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    late = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    analyst = await psycopg.AsyncConnection.connect(settings.DATABASE_ADMIN_URL, autocommit=True)
    await analyst.execute("SET ROLE lufy_analyst")
    try:
        naive_last = 0
        safe_last = "0"
        async with early.transaction():
            # Takes the lower position, commits last.
            await append_one(early, store, "slow")
            await append_one(late, store, "fast")
            naive = await (
                await analyst.execute(
                    "SELECT global_position FROM analytics.events "
                    "WHERE global_position > %s ORDER BY global_position",
                    [naive_last],
                )
            ).fetchall()
            naive_last = max(r[0] for r in naive)
            safe = await (
                await analyst.execute(
                    "SELECT global_position, transaction_id::text FROM analytics.events "
                    "WHERE transaction_id > %s::xid8 "
                    "AND transaction_id < analytics.safe_position() "
                    "ORDER BY transaction_id, global_position",
                    [safe_last],
                )
            ).fetchall()
            # The committed "fast" event is held back: a transaction below it is in flight.
            assert await labels_of(admin_conn, naive) == ["fast"]
            assert safe == []
        naive_again = await (
            await analyst.execute(
                "SELECT global_position FROM analytics.events WHERE global_position > %s",
                [naive_last],
            )
        ).fetchall()
        safe_again = await (
            await analyst.execute(
                "SELECT global_position, transaction_id::text FROM analytics.events "
                "WHERE transaction_id > %s::xid8 AND transaction_id < analytics.safe_position() "
                "ORDER BY transaction_id, global_position",
                [safe_last],
            )
        ).fetchall()
    finally:
        for conn in (early, late, analyst):
            await conn.close()
    assert naive_again == []  # the attack on correctness: "slow" is lost for good
    assert await labels_of(admin_conn, safe_again) == ["slow", "fast"]


async def test_an_export_resumed_from_its_last_written_event_neither_loses_nor_repeats_events(
    settings: Settings, store: EventStore, tmp_path: Path
) -> None:
    writer = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    held = await psycopg.AsyncConnection.connect(settings.DATABASE_URL, autocommit=True)
    expected = [f"e{n}" for n in range(6)]
    try:
        for label in expected[:2]:
            await append_one(writer, store, label)
        async with held.transaction():
            await append_one(held, store, "held")
            for label in expected[2:4]:
                await append_one(writer, store, label)
            first = export_events(settings, since=0, fmt="ndjson", out=tmp_path / "1.ndjson")
        for label in expected[4:]:
            await append_one(writer, store, label)
        second = export_events(
            settings, since=first.resume_from, fmt="ndjson", out=tmp_path / "2.ndjson"
        )
        third = export_events(
            settings, since=second.resume_from, fmt="ndjson", out=tmp_path / "3.ndjson"
        )
    finally:
        await writer.close()
        await held.close()
    rows = [
        json.loads(line)
        for name in ("1.ndjson", "2.ndjson", "3.ndjson")
        for line in (tmp_path / name).read_text().splitlines()
    ]
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids)), "an event was exported twice"
    exported = {r["event_id"] for r in rows}
    async with await psycopg.AsyncConnection.connect(settings.DATABASE_URL) as conn:
        cur = await conn.execute("SELECT event_id::text FROM lufy.events")
        everything = {str(r[0]) for r in await cur.fetchall()}
    assert exported == everything, "an event was lost"
    # The first export stopped below the held transaction: e0, e1 only.
    assert first.events == 2
    assert third.events == 0
    assert third.resume_from == second.resume_from
    order = [(r["transaction_id"], r["global_position"]) for r in rows]
    assert order == sorted(order)


async def test_the_export_carries_no_email_display_name_anonymous_id_or_properties(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    email = f"private-{uuid.uuid4().hex[:6]}@example.com"
    await create_user(container, role="artist", email=email, display_name="Secret Name")
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "page.viewed",
        "occurred_at": "2026-12-01T10:00:00Z",
        "session_id": "s-private",
        "anonymous_id": "anon-who-must-not-leak",
        "properties": {"note": "free text that must not leak"},
    }
    async with api_client(container) as client:
        response = await client.post(
            "/api/analytics/events",
            content=json.dumps({"events": [event]}),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    out = tmp_path / "all.ndjson"
    export = export_events(settings, since=0, fmt="ndjson", out=out)
    text = out.read_text()
    assert export.events >= 2
    for secret in (email, "Secret Name", "anon-who-must-not-leak", "must not leak"):
        assert secret not in text
    assert event["event_id"] in text


def test_lufy_events_export_writes_parquet_with_the_same_rows_as_ndjson(
    settings: Settings, tmp_path: Path, monkeypatch: Any
) -> None:
    import asyncio

    async def seed() -> None:
        async with await psycopg.AsyncConnection.connect(
            settings.DATABASE_URL, autocommit=True
        ) as conn:
            for n in range(3):
                await append_one(conn, EventStore(), f"p{n}")

    asyncio.run(seed())
    for name, value in (
        ("DATABASE_URL", settings.DATABASE_URL),
        ("DATABASE_ADMIN_URL", settings.DATABASE_ADMIN_URL),
        ("REDIS_URL", settings.REDIS_URL),
        ("LUFY_ENV", "test"),
    ):
        monkeypatch.setenv(name, value)
    from lufy.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    try:
        as_json = runner.invoke(
            cli, ["events", "export", "--since", "0", "--out", str(tmp_path / "a.ndjson")]
        )
        as_parquet = runner.invoke(
            cli,
            [
                "events",
                "export",
                "--since",
                "0",
                "--format",
                "parquet",
                "--out",
                str(tmp_path / "a.parquet"),
            ],
        )
        no_out = runner.invoke(cli, ["events", "export", "--since", "0", "--format", "parquet"])
        negative = runner.invoke(cli, ["events", "export", "--since", "-1"])
    finally:
        get_settings.cache_clear()
    assert as_json.exit_code == 0, as_json.output
    assert as_parquet.exit_code == 0, as_parquet.output
    assert no_out.exit_code == 2
    assert negative.exit_code == 2
    lines = [json.loads(x) for x in (tmp_path / "a.ndjson").read_text().splitlines()]
    table = pq.read_table(tmp_path / "a.parquet").to_pylist()
    assert len(lines) == len(table) == 3
    assert [r["event_id"] for r in lines] == [r["event_id"] for r in table]
    assert [r["transaction_id"] for r in lines] == [r["transaction_id"] for r in table]
    assert "next: --since" in as_json.output
