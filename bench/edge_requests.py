"""The local edge's own CPU per request, in process, against a bare ASGI app reading the same
files (the floor of any edge written as an ASGI application), measured in the same run.

    python bench/edge_requests.py [--plays 400] [--repeat 7] [--one-token]

A stream package's first four files (master playlist, variant playlist, 16-byte key, a 48 KB
segment) are fetched `--plays` times, each play with a stream token of its own (as after a
grant: the master playlist's request meets a token the edge has not seen; `--one-token`: the
same token for all), through the application `create_app` builds (so through
`lufy.media.edge_asgi`: the token's checks, the read, request ids, metrics), by calling it as
the server would, and the same four files through `bare` below
(open, read, send: no check at all). What is timed is this process's CPU time
(`time.process_time`), not wall time, so the figure holds on a busy machine; the best of
`--repeat` alternating batches per side. No server, no database (the container is not
started: the edge does not use it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchkit import get_scope

from lufy.bootstrap import bootstrap
from lufy.media.signing import issue_stream_token
from lufy.media.storage import LocalStorage
from lufy.settings import load_settings
from lufy.web.app import create_app

FILES = ["master.m3u8", "64k/index.m3u8", "key.bin", "64k/seg_00000.ts"]
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"connection", b"keep-alive"),
    (b"user-agent", b"python-httpx/0.28.1"),
]
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _package(root: Path) -> uuid.UUID:
    track_id = uuid.uuid4()
    folder = root / "hls" / str(track_id)
    (folder / "64k").mkdir(parents=True)
    (folder / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=64000\n64k/index.m3u8\n"
    )
    (folder / "64k" / "index.m3u8").write_text("#EXTM3U\n#EXTINF:6.0,\nseg_00000.ts\n")
    (folder / "64k" / "seg_00000.ts").write_bytes(os.urandom(48_000))
    (folder / "key.bin").write_bytes(os.urandom(16))
    return track_id


def _bare(root: Path) -> App:
    async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with open(f"{root}{scope['path'][4:]}", "rb") as file:  # noqa: ASYNC230 (the floor)
            body = file.read()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return bare


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _batch(app: App, plays: list[list[str]]) -> float:
    """CPU seconds per request for `plays` (each a list of paths); every answer must be a 200."""
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for paths in plays:
        for path in paths:
            await app(get_scope(path, HEADERS), _receive, send)
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses: {sorted(set(statuses))}")
    return spent / (len(plays) * len(FILES))


async def main(plays: int, repeat: int, one_token: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="lufy-bench-edge-"))
    track_id = _package(root)
    settings = load_settings(
        DATABASE_URL="postgresql://bench@127.0.0.1:5432/not_used",
        MEDIA_ROOT=root,
        JWT_SECRET="bench-secret-bench-secret-bench-secret-0123",
        APP_URL="http://127.0.0.1:8000",
        LUFY_ENV="test",
    )
    app = create_app(bootstrap(settings, storage=LocalStorage(root)))

    def token() -> str:
        signed, _ = issue_stream_token(
            settings.jwt_secret,
            track_id=track_id,
            subject=None,
            grant_id=uuid.uuid4(),
            tier="premium",
            now=datetime.now(UTC),
        )
        return signed

    def edge_plays() -> list[list[str]]:  # a fresh token per play, signed before timing
        fresh = [token()] * plays if one_token else [token() for _ in range(plays)]
        return [[f"/media/hls/{t}/{track_id}/{name}" for name in FILES] for t in fresh]

    bare_plays = [[f"/raw/hls/{track_id}/{name}" for name in FILES]] * plays
    best = {"edge": float("inf"), "bare": float("inf")}
    await _batch(app, edge_plays()[: max(1, plays // 10)])  # warm up
    await _batch(_bare(root), bare_plays[: max(1, plays // 10)])
    for _ in range(repeat):
        best["edge"] = min(best["edge"], await _batch(app, edge_plays()))
        best["bare"] = min(best["bare"], await _batch(_bare(root), bare_plays))
    edge, bare = best["edge"], best["bare"]
    print(
        f"CPU per request (best of {repeat} batches of {plays} plays x {len(FILES)} files): "
        f"the local edge {edge * 1e6:.1f} us, a bare ASGI app reading the same files "
        f"{bare * 1e6:.1f} us; ratio {edge / bare:.2f} (the edge's own cost "
        f"{(edge - bare) * 1e6:.1f} us per request); load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--plays", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--one-token",
        action="store_true",
        help="one token for every play (a listener's requests after the first play)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.plays, args.repeat, args.one_token))
