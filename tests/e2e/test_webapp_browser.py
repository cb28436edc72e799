"""The web app in a real browser against a real stack: `lufy dev` on a fresh database and a
free port, driven by Playwright (playwright-core, Debian's Chromium; frontend/e2e/app.e2e.mjs).

An artist signs up, verifies through the e-mail file backend, uploads a generated 40-second
tone, publishes it, plays it past 31 s, and finds the stream in the realtime panel and the
overview equal to the API's; offline, a reload shows the last dashboard with its banner; a
reused refresh token signs out with a message; magic link and password reset work from their
e-mails; the app is installable and its first load stays within 300 KB of compressed JS.
Screenshots go to frontend/test-results/screenshots (not committed).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lufy.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
CHROMIUM = os.environ.get("LUFY_CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tone(path: Path) -> Path:
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=40", "-ac", "2", "-ar", "44100"]
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *tone, str(path)], check=True)
    return path


@pytest.fixture
def stack(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    assert (FRONTEND / "dist" / "index.html").is_file(), (
        "the web app is not built: run `npm ci && npm run build` in frontend/ (./scripts/test does)"
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "DATABASE_ADMIN_URL": settings.DATABASE_ADMIN_URL,
        "REDIS_URL": settings.REDIS_URL,
        "JWT_SECRET": settings.JWT_SECRET or "",
        "LUFY_ENV": "dev",
        "APP_URL": base,
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": str(settings.EMAIL_FILE_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    log = (tmp_path / "stack.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "lufy.cli", "dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "stack.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the stack did not become ready in 90 s"
            time.sleep(0.5)
        yield base, settings
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_an_artist_uploads_plays_and_sees_the_stream_in_the_browser_also_offline(
    stack: tuple[str, Settings], tmp_path: Path
) -> None:
    base, settings = stack
    assert Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM} (scripts/services.sh installs it)"
    node = shutil.which("node")
    assert node is not None, "node is required for the browser test"
    shots = FRONTEND / "test-results" / "screenshots"
    result = subprocess.run(
        [node, "e2e/app.e2e.mjs"],
        cwd=FRONTEND,
        env={
            **os.environ,
            "BASE_URL": base,
            "MAIL_DIR": str(settings.EMAIL_FILE_DIR),
            "TONE": str(_tone(tmp_path / "tone.wav")),
            "SHOTS": str(shots),
            "CHROMIUM": CHROMIUM,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = json.loads(output.strip().splitlines()[-1] if result.stdout.strip() else "{}")
    assert summary["ok"] is True
    assert 0 < summary["first_load_js_bytes"] <= 300 * 1024
    for name in ("dashboard-1280x800", "dashboard-390x844", "player-1280x800", "player-390x844"):
        assert (shots / f"{name}.png").stat().st_size > 0
