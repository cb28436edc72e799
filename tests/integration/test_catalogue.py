"""events/: one JSON Schema per event type and version, generated from the Structs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import lufy.eventstore.cli as events_cli
from lufy.eventstore import default_codec
from lufy.eventstore.cli import expected_schemas
from lufy.sqlfiles import data_dir


def _shipped() -> dict[str, str]:
    folder = data_dir("events")
    return {
        e.name: e.read_text(encoding="utf-8") for e in folder.iterdir() if e.name.endswith(".json")
    }


def test_the_catalogue_matches_the_code() -> None:
    shipped = _shipped()
    expected = expected_schemas()
    drift = sorted(name for name, text in expected.items() if shipped.get(name) != text)
    assert drift == [], f"events/ is out of date for {drift}: run `lufy events schema`"


def test_every_catalogue_file_belongs_to_a_registered_type_at_or_below_its_version() -> None:
    codec = default_codec()
    for name, text in _shipped().items():
        schema = json.loads(text)
        type_name, version = schema["x-event-type"], schema["x-schema-version"]
        assert name == f"{type_name}.v{version}.json"
        assert type_name in codec.types, f"{name}: no registered event has this type"
        assert version <= codec.schema_version(type_name)


@pytest.fixture
def catalogue_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "events"
    shutil.copytree(Path(str(data_dir("events"))), folder)
    monkeypatch.setattr(events_cli, "data_dir", lambda name: folder)
    return folder


def test_the_check_fails_on_an_edited_or_missing_schema_and_the_generator_repairs_it(
    catalogue_copy: Path,
) -> None:
    runner = CliRunner()
    assert runner.invoke(events_cli.events, ["schema", "--check"]).exit_code == 0

    edited, removed = sorted(expected_schemas())[:2]
    schema = json.loads((catalogue_copy / edited).read_text())
    schema["x-note"] = "hand-edited"
    (catalogue_copy / edited).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    (catalogue_copy / removed).unlink()

    result = runner.invoke(events_cli.events, ["schema", "--check"])
    assert result.exit_code == 1
    assert edited in result.output
    assert removed in result.output

    assert runner.invoke(events_cli.events, ["schema"]).exit_code == 0
    assert runner.invoke(events_cli.events, ["schema", "--check"]).exit_code == 0
    assert {p.name for p in catalogue_copy.iterdir()} >= set(expected_schemas())


def test_a_field_added_to_an_event_is_drift_until_the_catalogue_is_regenerated(
    catalogue_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lufy.eventstore import Event, EventCodec

    class Added(Event, frozen=True, tag="test.catalogue_added"):
        a: int

    class AddedMore(Event, frozen=True, tag="test.catalogue_added"):
        a: int
        b: str = ""

    monkeypatch.setattr(events_cli, "default_codec", lambda: EventCodec([Added]))
    runner = CliRunner()
    assert runner.invoke(events_cli.events, ["schema"]).exit_code == 0
    assert runner.invoke(events_cli.events, ["schema", "--check"]).exit_code == 0
    monkeypatch.setattr(events_cli, "default_codec", lambda: EventCodec([AddedMore]))
    result = runner.invoke(events_cli.events, ["schema", "--check"])
    assert result.exit_code == 1
    assert "test.catalogue_added.v1.json" in result.output
