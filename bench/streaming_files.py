"""`bench/streaming.py`'s helpers for the four files alone: a bare ASGI application
(`python_files`, run in a process of its own by the server code `lufy serve` runs,
`lufy.web.server`, and by granian behind its static files; this module imports nothing of
Lufy), and the phase that times the four files through the edge, from granian's static files
and through that application."""

from __future__ import annotations

import os
import socket
import statistics
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = [
    "LeanClient",
    "fetch",
    "measure_files",
    "pct",
    "python_files",
    "python_files_factory",
    "report_files",
    "tree_cpu",
]


def _read_file(path: str) -> bytes:
    with open(path, "rb") as file:  # on the loop, as the edge reads local files
        return file.read()


async def python_files(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`/python/hls/…` is the same file read in Python and sent through the server's ASGI
    interface, with no check at all: on `lufy serve`'s server, the floor of any edge written
    as an ASGI application there. Anything else is 404 (granian's static files answer
    `/hls/…` before it)."""
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    status, body = 404, b""
    if path.startswith("/python/hls/") and ".." not in path:
        status, body = 200, _read_file(os.environ["LUFY_BENCH_MEDIA"] + path[7:])
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def python_files_factory() -> Any:
    """`python_files`, for `lufy.web.server.serve` (which loads an application factory)."""
    return python_files


def fetch(client: httpx.Client, urls: list[str]) -> None:
    for url in urls:
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_files(
    rounds: int,
    client_token: tuple[str, str],
    granian_base: str,
    python_base: str,
    track_id: uuid.UUID,
    files: list[str],
) -> dict[str, list[float]]:
    """The four files alone, `rounds` times per side with one token (the plays' authorisation
    left out): the edge's own part, on many more samples than the plays give. Three sides,
    the order rotating: through the edge, granian's static files, and the same files read by
    a bare ASGI application on `lufy serve`'s server (`python_files` at `python_base`)."""
    base, access_token = client_token
    times: dict[str, list[float]] = {"edge": [], "static": [], "python": []}
    with (
        httpx.Client(timeout=30) as lufy,
        httpx.Client(timeout=30) as granian,
        httpx.Client(timeout=30) as python,
    ):
        grant = lufy.get(
            f"{base}/api/music/tracks/{track_id}/stream",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        grant.raise_for_status()
        folder = grant.json()["url"].removesuffix("master.m3u8")
        sides = [
            ("edge", lufy, [folder + name for name in files]),
            ("static", granian, [f"{granian_base}/hls/{track_id}/{name}" for name in files]),
            ("python", python, [f"{python_base}/python/hls/{track_id}/{name}" for name in files]),
        ]
        for _ in range(3):
            for _name, client, urls in sides:
                fetch(client, urls)
        for i in range(rounds):
            for name, client, urls in sides[i % 3 :] + sides[: i % 3]:
                started = time.perf_counter()
                fetch(client, urls)
                times[name].append(time.perf_counter() - started)
    return times


def report_files(times: dict[str, list[float]], rounds: int) -> None:
    e50, s50, p50 = (statistics.median(times[name]) for name in ("edge", "static", "python"))
    print(
        f"the four files alone, {rounds} rounds: through the edge p50 {e50 * 1000:.2f} ms p90 "
        f"{pct(times['edge'], 0.9) * 1000:.2f} ms; granian's static files p50 "
        f"{s50 * 1000:.2f} ms p90 {pct(times['static'], 0.9) * 1000:.2f} ms; ratio p50 "
        f"{e50 / s50:.2f}. A bare ASGI app reading them on lufy serve's server p50 "
        f"{p50 * 1000:.2f} ms "
        f"(ratio to static {p50 / s50:.2f}; the edge against it {e50 / p50:.2f}); "
        f"load average {os.getloadavg()[0]:.2f}"
    )


class LeanClient:
    """The least an HTTP/1.1 client can do: one keep-alive connection (Nagle off), a `GET`
    written in one `send`, the answer read by `Content-Length` or chunked encoding (granian's
    static files are chunked). No pool, no URL or header objects: what is left of a request's
    time is the server's and the loopback's. The same class for every side."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base)
        self._sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = [f"host: {parts.netloc}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
        self._head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self._buffer = b""

    def _more(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed the keep-alive connection")
        self._buffer += data

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode()
        self._sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\n" + extra + self._head)
        while b"\r\n\r\n" not in self._buffer:
            self._more()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        fields = dict(line.lower().split(b":", 1) for line in lines[1:])
        if b"content-length" in fields:
            size = int(fields[b"content-length"])
            while len(self._buffer) < size:
                self._more()
            body, self._buffer = self._buffer[:size], self._buffer[size:]
            return status, body
        chunks = []
        while True:  # chunked
            while b"\r\n" not in self._buffer:
                self._more()
            size_line, _, self._buffer = self._buffer.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(self._buffer) < size + 2:
                self._more()
            chunks.append(self._buffer[:size])
            self._buffer = self._buffer[size + 2 :]
            if size == 0:
                return status, b"".join(chunks)

    def fetch(self, paths: list[str]) -> None:
        for path in paths:
            status, body = self.get(path)
            if status != 200:
                raise RuntimeError(f"{path}: {status} {body[:200]!r}")

    def close(self) -> None:
        self._sock.close()


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants' live threads
    (Linux `/proc`; 0 elsewhere). Clock ticks: read over hundreds of requests."""
    total, pending, tick = 0, [pid], os.sysconf("SC_CLK_TCK")
    while pending:
        tasks = Path(f"/proc/{pending.pop()}/task")
        try:
            for task in tasks.iterdir():
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:  # not Linux, or a thread that has just ended
            continue
    return total / tick
