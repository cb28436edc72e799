"""Media test helpers: generated audio, a local S3 server (moto, over HTTP), free ports.

Import the fixtures you need into a test module (`from tests.helpers.media import moto_s3`).
Audio is generated with ffmpeg's lavfi sine source at test time; no media is committed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lufy.media.storage import S3Storage
from lufy.media.transcode import ffmpeg_binary

__all__ = ["MotoS3", "free_port", "make_tone", "moto_s3", "s3_storage", "wait_http"]

_CODECS = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac"],
    ".m4a": ["-c:a", "aac", "-b:a", "128k"],
    ".ogg": ["-c:a", "libvorbis"],
}


def make_tone(path: Path, *, seconds: float = 20.0, frequency: int = 440) -> Path:
    """A stereo sine tone in the format named by `path`'s suffix."""
    subprocess.run(
        [
            ffmpeg_binary(),
            *("-hide_banner", "-loglevel", "error", "-nostdin", "-y"),
            *("-f", "lavfi", "-i", f"sine=frequency={frequency}:duration={seconds}"),
            *("-ac", "2", "-ar", "44100"),
            *_CODECS[path.suffix],
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(
    url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


class MotoS3:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def storage(self) -> S3Storage:
        storage = S3Storage(f"lufy-test-{uuid.uuid4().hex[:12]}", client=self.client())
        storage.create_bucket()
        return storage


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 in server mode: a subprocess on a free loopback port, spoken to over HTTP."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_http(endpoint, process=process)
        yield MotoS3(endpoint)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def s3_storage(moto_s3: MotoS3) -> S3Storage:
    return moto_s3.storage()
