"""The hashed lock files: made from pyproject.toml's dependencies, and stale ones are caught."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copy_of_the_repo(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lock", tmp_path / "scripts" / "lock")
    for name in ("pyproject.toml", "requirements.lock", "requirements-dev.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(root / "scripts" / "lock"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_lock_files_match_the_declared_dependencies_and_pin_every_package_by_hash() -> None:
    assert check(ROOT).returncode == 0
    for name in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / name).read_text()
        pins = [line for line in text.splitlines() if "==" in line and not line.startswith("#")]
        assert pins
        assert all(line.rstrip().endswith("\\") for line in pins), "a pin without its hashes"
        assert text.count("--hash=sha256:") >= len(pins)
    runtime = (ROOT / "requirements.lock").read_text()
    assert "\nlitestar==" in runtime
    assert "\npytest==" not in runtime  # dev tools stay out of the image
    assert "\nuv==" in (ROOT / "requirements-dev.lock").read_text()  # the resolver is declared


def test_a_dependency_added_without_regenerating_the_locks_is_caught(tmp_path: Path) -> None:
    root = copy_of_the_repo(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "dependencies = [\n", 'dependencies = [\n  "left-pad-but-python>=1",\n', 1
        )
    )
    done = check(root)
    assert done.returncode == 1
    assert "run scripts/lock" in done.stderr


def test_a_change_outside_the_dependency_tables_needs_no_new_lock(tmp_path: Path) -> None:
    root = copy_of_the_repo(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("line-length = 100", "line-length = 99"))
    assert check(root).returncode == 0
