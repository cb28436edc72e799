"""`lufy migrate`: ordered, checksummed, idempotent, creates the database and the roles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import lufy.migrate as migrate_module
from lufy.migrate import MigrationError, MigrationReport, migrate
from lufy.sqlfiles import data_dir
from tests.conftest import ADMIN_BASE, admin_url, app_url


def schema_dump(dbname: str) -> str:
    """The database's schema and bookkeeping rows, as pg_dump prints them."""
    out = subprocess.run(
        ["pg_dump", "--schema-only", "--no-comments", admin_url(dbname)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with psycopg.connect(admin_url(dbname)) as conn:
        rows = conn.execute(
            "SELECT filename, checksum, applied_at FROM lufy.schema_migrations "
            "UNION ALL SELECT filename, checksum, applied_at FROM lufy.projection_definitions "
            "ORDER BY 1"
        ).fetchall()
    # pg_dump 15 prints a random \restrict key on some builds; nothing else varies.
    lines = [line for line in out.splitlines() if not line.startswith("\\")]
    return "\n".join(lines) + "\n" + "\n".join(map(str, rows))


@pytest.fixture
def fresh_name() -> Iterator[str]:
    name = f"lufy_m_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(ADMIN_BASE, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def sql_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of sql/ that migrate() reads instead of the real one."""
    folder = tmp_path / "sql"
    source = data_dir("sql")
    folder.mkdir()
    for entry in source.iterdir():
        if entry.name.endswith(".sql"):
            (folder / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    real = migrate_module.data_dir
    monkeypatch.setattr(
        migrate_module, "data_dir", lambda name: folder if name == "sql" else real(name)
    )
    return folder


def _tables(dbname: str) -> set[str]:
    with psycopg.connect(admin_url(dbname)) as conn:
        rows = conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname = 'lufy'"
        ).fetchall()
    return {r[0] for r in rows}


def test_migrating_a_migrated_database_again_changes_nothing(dbname: str) -> None:
    before = schema_dump(dbname)
    report = migrate(admin_url(dbname), app_url(dbname))
    assert report == MigrationReport(created_database=False, applied=[], projections=[])
    assert schema_dump(dbname) == before


def test_migrate_creates_a_missing_database_and_a_second_run_is_a_no_op(
    fresh_name: str,
) -> None:
    first = migrate(admin_url(fresh_name), app_url(fresh_name))
    assert first.created_database
    assert first.applied == sorted(
        entry.name for entry in data_dir("sql").iterdir() if entry.name.endswith(".sql")
    )
    assert "lufy.events" in _tables(fresh_name)
    dump = schema_dump(fresh_name)
    second = migrate(admin_url(fresh_name), app_url(fresh_name))
    assert (second.created_database, second.applied, second.projections) == (False, [], [])
    assert schema_dump(fresh_name) == dump


def test_two_migrators_at_once_apply_each_migration_once(fresh_name: str) -> None:
    reports: list[MigrationReport] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(migrate(admin_url(fresh_name), app_url(fresh_name)))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    applied = sorted(name for r in reports for name in r.applied)
    with psycopg.connect(admin_url(fresh_name)) as conn:
        recorded = [r[0] for r in conn.execute("SELECT filename FROM lufy.schema_migrations")]
    assert applied == sorted(recorded)
    assert [r.created_database for r in reports].count(True) == 1


def test_an_edited_migration_stops_everything_before_anything_runs(
    dbname: str, sql_copy: Path
) -> None:
    first = sql_copy / "0001_event_log.sql"
    first.write_text(first.read_text() + "\n-- a harmless-looking edit\n")
    # A new file that sorts before the edited one's neighbours must not run either.
    (sql_copy / "0002_zz_new.sql").write_text("CREATE TABLE lufy.should_not_exist (id int);")
    before = schema_dump(dbname)
    with pytest.raises(MigrationError, match=r"0001_event_log\.sql was edited"):
        migrate(admin_url(dbname), app_url(dbname))
    assert "lufy.should_not_exist" not in _tables(dbname)
    assert schema_dump(dbname) == before


def test_a_new_migration_is_applied_once_and_recorded(dbname: str, sql_copy: Path) -> None:
    (sql_copy / "0099_test_new.sql").write_text("CREATE TABLE lufy.brand_new (id int);")
    report = migrate(admin_url(dbname), app_url(dbname))
    assert report.applied == ["0099_test_new.sql"]
    assert "lufy.brand_new" in _tables(dbname)
    assert migrate(admin_url(dbname), app_url(dbname)).applied == []


def test_a_failing_migration_leaves_no_trace(dbname: str, sql_copy: Path) -> None:
    (sql_copy / "0098_broken.sql").write_text(
        "CREATE TABLE lufy.half_done (id int);\nSELECT * FROM lufy.no_such_table;"
    )
    with pytest.raises(MigrationError, match="no_such_table"):
        migrate(admin_url(dbname), app_url(dbname))
    assert "lufy.half_done" not in _tables(dbname)
    with psycopg.connect(admin_url(dbname)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM lufy.schema_migrations WHERE filename = '0098_broken.sql'"
        ).fetchone()
    assert row == (0,)


def test_an_applied_migration_that_disappeared_is_refused(dbname: str, sql_copy: Path) -> None:
    (sql_copy / "0001_event_log.sql").unlink()
    with pytest.raises(MigrationError, match=r"0001_event_log\.sql is missing"):
        migrate(admin_url(dbname), app_url(dbname))


def test_the_app_role_owns_nothing_and_cannot_bypass_row_level_security(dbname: str) -> None:
    with psycopg.connect(admin_url(dbname)) as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin "
            "FROM pg_roles WHERE rolname IN ('lufy_app', 'lufy_analyst') ORDER BY rolname"
        ).fetchall()
        owned = conn.execute(
            "SELECT classid::regclass::text, objid FROM pg_shdepend "
            "WHERE refobjid = 'lufy_app'::regrole AND deptype = 'o' "
            "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
        settings = conn.execute(
            "SELECT unnest(setconfig) FROM pg_db_role_setting s "
            "JOIN pg_database d ON d.oid = s.setdatabase "
            "WHERE d.datname = current_database() AND s.setrole = 'lufy_app'::regrole"
        ).fetchall()
    assert roles == [
        ("lufy_analyst", False, False, False, False, True),
        ("lufy_app", False, False, False, False, True),
    ]
    assert owned == []
    # One forgotten open transaction would hold back every reader of the log.
    assert ("idle_in_transaction_session_timeout=60s",) in settings


def test_lufy_migrate_on_the_command_line_creates_and_then_leaves_alone(
    fresh_name: str, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LUFY_"))},
        "DATABASE_ADMIN_URL": admin_url(fresh_name),
        "DATABASE_URL": app_url(fresh_name),
        "LUFY_ENV": "test",
    }
    command = [sys.executable, "-m", "lufy.cli", "migrate"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "database created" in first.stderr
    second = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "0 migration(s), 0 projection definition(s) applied" in second.stderr


def test_a_failed_lufy_migrate_exits_1_with_one_line(dbname: str, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LUFY_"))},
        "DATABASE_ADMIN_URL": "postgresql://nobody_at_all@127.0.0.1:5432/" + dbname,
        "DATABASE_URL": app_url(dbname),
        "LUFY_ENV": "test",
    }
    done = subprocess.run(
        [sys.executable, "-m", "lufy.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("lufy: ")
    assert "nobody_at_all" in lines[0]


def test_the_shipped_sql_folder_is_what_the_tests_migrate() -> None:
    # Guards the monkeypatching above: migrate reads migrations through data_dir("sql").
    assert shutil.which("pg_dump") is not None
    assert any(e.name == "0001_event_log.sql" for e in data_dir("sql").iterdir())


def test_migrate_refuses_a_log_whose_transaction_ids_are_ahead_of_the_cluster(
    dbname: str,
) -> None:
    # What a dump restored into a new cluster looks like: old rows keep their high xid8s.
    with psycopg.connect(admin_url(dbname), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO lufy.events (transaction_id, event_id, stream_type, stream_id, type, "
            "data) VALUES ((pg_current_xact_id()::text::bigint + (5::bigint << 32))::text::xid8,"
            " gen_random_uuid(), 'operations', 'x', 'operations.projection_rebuilt', '{}')"
        )
    with pytest.raises(MigrationError, match=r"pg_resetwal -e \d+") as caught:
        migrate(admin_url(dbname), app_url(dbname))
    assert "\n" not in str(caught.value)
