"""Stream-edge test helpers: the CloudFront Function under Node, hand-made tokens, the real app
in a subprocess, and `npm ci` for the Node side of the tests (`tests/browser/`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lufy.settings import Settings
from tests.helpers.media import free_port, wait_http

__all__ = [
    "BROWSER_DIR",
    "FunctionAnswer",
    "make_token",
    "npm_ci",
    "raw_get",
    "run_function",
    "serve_app",
]

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = ROOT / "tests" / "browser"


@dataclass(frozen=True)
class FunctionAnswer:
    status: int
    origin_uri: str | None
    detail: str | None
    querystring: dict[str, Any] | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(header: Mapping[str, Any], claims: Mapping[str, Any], secret: str | None) -> str:
    """A JWT with exactly this header and these claims, HS256-signed with `secret` (or with
    an empty signature when `secret` is None: `alg: none`)."""
    head = _b64(json.dumps(header, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    if secret is None:
        return f"{head}.{body}."
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def run_function(
    kvs: Mapping[str, str],
    uris: list[str],
    querystrings: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[FunctionAnswer]:
    """`deploy/cloudfront/stream-auth.js` under Node, one viewer-request event per URI."""
    node = shutil.which("node")
    assert node is not None, "node is required for the CloudFront Function tests"
    result = subprocess.run(
        [node, str(BROWSER_DIR / "run-function.mjs")],
        input=json.dumps(
            {"kvs": dict(kvs), "uris": uris, "querystrings": dict(querystrings or {})}
        ).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    answers = json.loads(result.stdout)
    assert [a["uri"] for a in answers] == uris
    return [
        FunctionAnswer(
            status=a["statusCode"],
            origin_uri=a.get("originUri"),
            detail=a.get("detail"),
            querystring=a.get("querystring"),
        )
        for a in answers
    ]


def raw_get(base: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET `path` sent exactly as written (no normalising of `..` or percent-escapes)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def npm_ci() -> Path:
    """Install the Node dependencies of the browser tests from their lock file (once)."""
    stamp = BROWSER_DIR / "node_modules" / ".lufy-npm-ci"
    lock = BROWSER_DIR / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        assert npm is not None, "npm is required for the browser tests"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True, timeout=600
        )
        stamp.touch()
    return BROWSER_DIR


@contextmanager
def serve_app(settings: Settings, **env_overrides: str) -> Iterator[str]:
    """The real app as `lufy serve` runs it, in a subprocess on a free loopback port; yields
    its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "DATABASE_ADMIN_URL": settings.DATABASE_ADMIN_URL,
        "REDIS_URL": settings.REDIS_URL,
        "JWT_SECRET": settings.jwt_secret,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_DIR": str(settings.EMAIL_FILE_DIR),
        "APP_URL": base,
        "LUFY_ENV": "test",
        # A player fetches a dozen playlists and segments; the guest limit is not under test.
        "RATE_LIMIT_ENABLED": "false",
        **env_overrides,
    }
    for name in ("S3_BUCKET_NAME", "S3_ENDPOINT_URL", "CLOUDFRONT_DOMAIN"):
        if name not in env_overrides:
            env.pop(name, None)
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "lufy.cli", "serve"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"{base}/healthz", process=process, timeout=60)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
