"""Streaming figure: time to first segment through the local edge, as a ratio to fetching the
same four files from a plain static file server on the same machine, measured in the same run.

    python bench/streaming.py [--plays 50] [--seconds 30] [--file-rounds 300]
                              [--lean-plays N] [--lean-pause 5]

One play through Lufy = what a player does before it can start: `GET
/api/music/tracks/{id}/stream` as a signed-in listener (the authorisation: RLS read, a
`catalog.stream_authorized` appended, a token signed; rate limiting on), then through the
local edge `/media/hls/{token}/{track_id}/…` the master playlist, the first variant playlist
it lists, the AES key and the first segment (each checked as the CloudFront Function checks
it, then read from local storage), without the access token, as the web app's player fetches
them. The baseline fetches the same four files from a static file
server serving the media root: granian's static file serving (its Rust file server, one
worker: the fastest static file server at hand, kept as the baseline after `lufy serve` moved
from granian to uvicorn, see `lufy.web.server`); Python's `http.server` (threads, HTTP/1.1
keep-alive, Nagle off) is measured too and printed for comparison with earlier runs. Every
server runs in a process of its own, and each side gets one keep-alive client of its own, as
a player does; the order of the three sides rotates from play to play so drift falls on all;
the figure is p50 / p50 (p90 also printed), with each side's server CPU per play (its
processes' user + system time from `/proc`; PostgreSQL and Redis not counted). Then, unless
`--lean-plays 0`, the same plays, Lufy against granian's static files, on a lean HTTP client
(`LeanClient`: one socket, a request in one write, nothing else), each play `--lean-pause` ms
after the previous one: the client's own time per request is paid by both sides and flatters
the side that makes more requests and takes longer, so this is the servers' ratio with little
of it (docs/benchmarks.md, "Time to first segment (stream-auth)"). Then, unless
`--file-rounds 0`, the edge's own part on more samples: the four files alone, through the edge
(one token), from granian's static files and read by a bare ASGI application on the server
`lufy serve` runs (`lufy.web.server`; no check: the floor of any edge written in Python there),
rotating, `--file-rounds` times each. Lufy is `lufy serve --workers 1`, with a throw-away
database (migrated like production) that is dropped at the end. Admin connection:
LUFY_BENCH_ADMIN_URL (default: the OS user on 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from benchkit import drop_database, listener_token
from streaming_files import LeanClient, fetch, measure_files, pct, report_files, tree_cpu

from lufy.bootstrap import bootstrap
from lufy.catalog.processing import process_track
from lufy.catalog.schemas import UploadCreate
from lufy.media import transcode
from lufy.media.storage import LocalStorage
from lufy.migrate import migrate
from lufy.settings import load_settings
from lufy.web.auth import Principal

ADMIN_BASE = os.environ.get(
    "LUFY_BENCH_ADMIN_URL", f"postgresql://{getpass.getuser()}@127.0.0.1:5432/postgres"
)
SECRET = "bench-secret-bench-secret-bench-secret-0123"


def _url(dbname: str, *, app: bool) -> str:
    base = urlsplit(ADMIN_BASE)
    netloc = f"lufy_app:lufy_app@{base.hostname}:{base.port or 5432}" if app else base.netloc
    return urlunsplit(base._replace(netloc=netloc, path=f"/{dbname}"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lufy serve exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the edge
    # Headers and body go out as two writes: without this, Nagle plus the client's delayed ACK
    # add ~40 ms to every response and the baseline would flatter the edge.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve_static(root: str, port: int) -> None:
    """`--serve-static`: Python's http.server, in the process this runs in."""
    handler = partial(_Quiet, directory=root)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


def _static_servers(media: Path) -> tuple[list[subprocess.Popen[bytes]], str, str, str]:
    """(processes, granian's base URL, http.server's base URL, the bare ASGI application's on
    `lufy serve`'s server), each serving `media`."""
    granian_port, plain_port, python_port = _free_port(), _free_port(), _free_port()
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    granian = subprocess.Popen(
        [
            sys.executable,
            *("-m", "granian", "--interface", "asgi", "--workers", "1", "--no-ws"),
            *("--host", "127.0.0.1", "--port", str(granian_port), "--log-level", "warning"),
            *("--static-path-route", "/hls", "--static-path-mount", str(media / "hls")),
            *("--working-dir", str(Path(__file__).parent), "streaming_files:python_files"),
        ],
        env={**os.environ, "LUFY_BENCH_MEDIA": str(media)},
        **quiet,
    )
    plain = subprocess.Popen(
        [sys.executable, __file__, "--serve-static", str(media), "--port", str(plain_port)],
        **quiet,
    )
    python = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from lufy.web.server import serve; "
            f"serve('127.0.0.1', {python_port}, 1, 'streaming_files:python_files_factory')",
        ],
        cwd=Path(__file__).parent,
        env={**os.environ, "LUFY_BENCH_MEDIA": str(media)},
        **quiet,
    )
    return (
        [granian, plain, python],
        *(f"http://127.0.0.1:{port}" for port in (granian_port, plain_port, python_port)),
    )


def _first_files(root: Path, track_id: uuid.UUID) -> list[str]:
    """master, the first variant it lists, the key, that variant's first segment."""
    folder = root / "hls" / str(track_id)
    master = (folder / "master.m3u8").read_text()
    variant = next(line for line in master.splitlines() if line.endswith(".m3u8"))
    playlist = (folder / variant).read_text()
    segment = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
    rendition = variant.split("/")[0]
    return ["master.m3u8", variant, "key.bin", f"{rendition}/{segment}"]


_AUTHORISATION: list[float] = []
_CPU: dict[str, float] = {}


def _lufy_play(
    client: httpx.Client, base: str, bearer: dict[str, str], track_id: uuid.UUID, files: list[str]
) -> float:
    started = time.perf_counter()
    # The access token goes with the API request only: a player fetches the media without it
    # (the web app's hls.js sends no Authorization header; the token in the path is the
    # edge's only credential).
    grant = client.get(f"{base}/api/music/tracks/{track_id}/stream", headers=bearer)
    if grant.status_code != 200:
        raise RuntimeError(f"stream authorisation: {grant.status_code} {grant.text[:200]}")
    _AUTHORISATION.append(time.perf_counter() - started)
    url = grant.json()["url"]
    folder = url.removesuffix("master.m3u8")
    fetch(client, [folder + name for name in files])
    return time.perf_counter() - started


def _static_play(client: httpx.Client, base: str, track_id: uuid.UUID, files: list[str]) -> float:
    started = time.perf_counter()
    fetch(client, [f"{base}/hls/{track_id}/{name}" for name in files])
    return time.perf_counter() - started


async def _prepare(settings_kwargs: dict[str, object], media: Path, seconds: int) -> tuple:  # type: ignore[type-arg]
    settings = load_settings(**settings_kwargs)
    container = bootstrap(settings, pool_size=2, storage=LocalStorage(media))
    await container.start()
    try:
        service = container.catalog
        source = media.parent / "source.mp3"
        await asyncio.to_thread(
            subprocess.run,
            [
                transcode.ffmpeg_binary(),
                *("-hide_banner", "-loglevel", "error", "-nostdin", "-y"),
                *("-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}"),
                *("-ac", "2", "-c:a", "libmp3lame", "-b:a", "192k", str(source)),
            ],
            check=True,
        )
        artist = Principal(user_id=uuid.uuid4(), role="artist", session_id=uuid.uuid4())
        size = source.stat().st_size
        ticket = await service.request_upload(
            artist,
            UploadCreate(
                filename="b.mp3", content_type="audio/mpeg", size_bytes=size, title="bench"
            ),
        )
        service.storage.put_file(
            f"uploads/{ticket.track_id}/source.mp3", source, content_type="audio/mpeg"
        )
        await service.complete_upload(artist, ticket.upload_id)
        assert await process_track(service, ticket.track_id, "bench") == "ready"
        await service.publish(artist, ticket.track_id)
        return ticket.track_id, await listener_token(container.accounts)
    finally:
        await container.stop()


def _measure(
    plays: int,
    base: str,
    access_token: str,
    granian_base: str,
    plain_base: str,
    track_id: uuid.UUID,
    files: list[str],
    pids: dict[str, int],
) -> dict[str, list[float]]:
    """Per side, the time of each play; the order of the sides rotates from play to play. The
    CPU each side's server used over the plays (not the warm-up) is left in `_CPU`."""
    times: dict[str, list[float]] = {"lufy": [], "granian": [], "http.server": []}
    _AUTHORISATION.clear()
    with (
        httpx.Client(timeout=30) as lufy,
        httpx.Client(timeout=30) as granian,
        httpx.Client(timeout=30) as plain,
    ):
        bearer = {"Authorization": f"Bearer {access_token}"}
        sides = [
            ("lufy", partial(_lufy_play, lufy, base, bearer, track_id, files)),
            ("granian", partial(_static_play, granian, granian_base, track_id, files)),
            ("http.server", partial(_static_play, plain, plain_base, track_id, files)),
        ]
        for _ in range(3):  # warm all: connections, caches, prepared statements
            for _name, play in sides:
                play()
        cpu = {name: tree_cpu(pid) for name, pid in pids.items()}
        for i in range(plays):
            for name, play in sides[i % 3 :] + sides[: i % 3]:
                times[name].append(play())
        _CPU.update({name: tree_cpu(pid) - cpu[name] for name, pid in pids.items()})
    return times


def _measure_lean(
    plays: int,
    pause: float,
    base: str,
    access_token: str,
    granian_base: str,
    track_id: uuid.UUID,
    files: list[str],
) -> dict[str, list[float]]:
    """The same plays, Lufy against granian's static files only, each side on a `LeanClient`
    (one keep-alive connection, nothing but the request): how much of the figure is the
    client's own time, which both sides pay on every request, so that it flatters the side
    that takes longer. Every play starts `pause` seconds after the previous one ended, so each
    server has idled at least that long before it (in the plays above each idles while the two
    other sides play; on the shared VM the first request after a few ms of idling runs 2-3x
    slower, docs/benchmarks.md) and neither side idles much longer than the other."""
    times: dict[str, list[float]] = {"lufy": [], "granian": [], "authorisation": []}
    lufy = LeanClient(base)
    bearer = {"authorization": f"Bearer {access_token}"}  # the API request's only
    static = LeanClient(granian_base)
    stream = f"/api/music/tracks/{track_id}/stream"
    static_paths = [f"/hls/{track_id}/{name}" for name in files]

    def lufy_play() -> None:
        started = time.perf_counter()
        status, body = lufy.get(stream, bearer)
        if status != 200:
            raise RuntimeError(f"stream authorisation: {status} {body[:200]!r}")
        times["authorisation"].append(time.perf_counter() - started)
        folder = urlsplit(json.loads(body)["url"]).path.removesuffix("master.m3u8")
        lufy.fetch([folder + name for name in files])
        times["lufy"].append(time.perf_counter() - started)

    def static_play() -> None:
        started = time.perf_counter()
        static.fetch(static_paths)
        times["granian"].append(time.perf_counter() - started)

    try:
        for _ in range(3):
            lufy_play()
            static_play()
        for values in times.values():
            values.clear()
        for i in range(plays):
            for play in (lufy_play, static_play) if i % 2 == 0 else (static_play, lufy_play):
                time.sleep(pause)
                play()
    finally:
        lufy.close()
        static.close()
    return times


def _report_lean(times: dict[str, list[float]], plays: int, pause: float) -> None:
    ours, baseline = statistics.median(times["lufy"]), statistics.median(times["granian"])
    grant = statistics.median(times["authorisation"])
    print(
        f"the same plays on a lean client (one socket, nothing but the request; {pause * 1000:g}"
        f" ms idle before each play), {plays} plays a side: static file server (granian) p50 "
        f"{baseline * 1000:.2f} ms; Lufy p50 {ours * 1000:.2f} ms (authorisation "
        f"{grant * 1000:.2f} ms); ratio p50 {ours / baseline:.2f}; load average "
        f"{os.getloadavg()[0]:.2f}"
    )


def _report_cpu(cpu: dict[str, float], plays: int) -> None:
    print(
        "server CPU per play (user + system, the server's processes only; PostgreSQL and "
        "Redis not included): "
        + ", ".join(f"{name} {seconds / plays * 1000:.2f} ms" for name, seconds in cpu.items())
    )


def _report(times: dict[str, list[float]], plays: int, files: list[str]) -> None:
    ours, baseline, plain = times["lufy"], times["granian"], times["http.server"]
    b50, o50, p50 = (statistics.median(t) for t in (baseline, ours, plain))
    a50 = statistics.median(_AUTHORISATION[-plays:])
    edge50 = statistics.median(o - a for o, a in zip(ours, _AUTHORISATION[-plays:], strict=True))
    print(
        f"time to first segment ({' + '.join(['authorisation', *files])}), {plays} plays: "
        f"static file server (granian) p50 {b50 * 1000:.2f} ms p90 "
        f"{pct(baseline, 0.9) * 1000:.2f} ms; Lufy local edge p50 {o50 * 1000:.2f} ms p90 "
        f"{pct(ours, 0.9) * 1000:.2f} ms; ratio p50 {o50 / b50:.2f} (target <= 2). "
        f"Parts: authorisation p50 {a50 * 1000:.2f} ms, the four files through the edge p50 "
        f"{edge50 * 1000:.2f} ms (ratio {edge50 / b50:.2f}). Python http.server p50 "
        f"{p50 * 1000:.2f} ms (ratio p50 {o50 / p50:.2f} against it); "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def main(plays: int, seconds: int, file_rounds: int, lean_plays: int, lean_pause: float) -> None:
    dbname = f"lufy_bench_stream_{uuid.uuid4().hex[:8]}"
    migrate(_url(dbname, app=False), _url(dbname, app=True))
    work = Path(tempfile.mkdtemp(prefix="lufy-bench-stream-"))
    media = work / "media"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": _url(dbname, app=True),
        "DATABASE_ADMIN_URL": _url(dbname, app=False),
        "MEDIA_ROOT": str(media),
        "JWT_SECRET": SECRET,
        "APP_URL": base,
        "LUFY_ENV": "test",
        "EMAIL_BACKEND": "log",
    }
    for name in ("S3_BUCKET_NAME", "S3_ENDPOINT_URL", "CLOUDFRONT_DOMAIN"):
        env.pop(name, None)
    server: subprocess.Popen[bytes] | None = None
    statics: list[subprocess.Popen[bytes]] = []
    try:
        track_id, access_token = asyncio.run(
            _prepare(
                {
                    "DATABASE_URL": env["DATABASE_URL"],
                    "DATABASE_ADMIN_URL": env["DATABASE_ADMIN_URL"],
                    "MEDIA_ROOT": media,
                    "JWT_SECRET": SECRET,
                    "APP_URL": base,
                    "LUFY_ENV": "test",
                },
                media,
                seconds,
            )
        )
        files = _first_files(media, track_id)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lufy.cli",
                "serve",
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--workers", "1"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(f"{base}/healthz", server)
        statics, granian_base, plain_base, python_base = _static_servers(media)
        for url, process in ((granian_base, statics[0]), (plain_base, statics[1])):
            _wait(f"{url}/hls/{track_id}/master.m3u8", process)
        _wait(f"{python_base}/python/hls/{track_id}/master.m3u8", statics[2])
        pids = {"lufy": server.pid, "granian": statics[0].pid, "http.server": statics[1].pid}
        _report(
            _measure(plays, base, access_token, granian_base, plain_base, track_id, files, pids),
            plays,
            files,
        )
        _report_cpu(_CPU, plays)
        if lean_plays:
            _report_lean(
                _measure_lean(
                    lean_plays, lean_pause, base, access_token, granian_base, track_id, files
                ),
                lean_plays,
                lean_pause,
            )
        if file_rounds:
            report_files(
                measure_files(
                    file_rounds,
                    (base, access_token),
                    granian_base,
                    python_base,
                    track_id,
                    files,
                ),
                file_rounds,
            )
    finally:
        for process in statics:
            process.terminate()
            process.wait(timeout=15)
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)
        drop_database(ADMIN_BASE, dbname)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--plays", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--file-rounds",
        type=int,
        default=300,
        help="then the four files alone, this many times per side (0: skip)",
    )
    parser.add_argument(
        "--lean-plays",
        type=int,
        default=None,
        help="then the plays again on a lean client, this many a side (default: --plays; 0: skip)",
    )
    parser.add_argument(
        "--lean-pause", type=float, default=5.0, help="ms idle before each lean-client play"
    )
    parser.add_argument("--serve-static", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_static:
        _serve_static(args.serve_static, args.port)
        sys.exit(0)
    lean = args.plays if args.lean_plays is None else args.lean_plays
    main(args.plays, args.seconds, args.file_rounds, lean, args.lean_pause / 1000)
