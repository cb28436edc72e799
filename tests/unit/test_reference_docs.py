"""docs/ keeps the contract itself: generated references match the code, nothing points out."""

from __future__ import annotations

import re
from pathlib import Path

from lufy import docgen

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_has_a_description_in_the_configuration_reference() -> None:
    assert docgen.undocumented() == []


def test_the_generated_configuration_api_and_cli_references_match_the_code() -> None:
    assert docgen.main(["--check"]) == 0, "run `python -m lufy.docgen`"


def test_the_configuration_reference_names_every_setting_and_its_default() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name in ("DATABASE_READ_URL", "READ_REPLICA_MAX_LAG", "METRICS_PORT", "METRICS_TOKEN"):
        assert f"| `{name}` |" in text
    assert "| `READ_REPLICA_MAX_LAG` | number |" in text
    assert "| `10.0` |" in text


def test_no_document_points_outside_the_repository() -> None:
    # `../key.bin` in an HLS playlist is a relative URI, not a link out of the repository.
    outside = re.compile(r"\]\(\.\./|\.\./shared|/work/|CONTRACT\.md|DESIGN\.md|CONTRACT §")
    offenders = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if outside.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
