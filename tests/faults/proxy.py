"""A small HTTP load balancer for tests and benchmarks: what a real one does during a deploy.

Round-robin over the backends in rotation, one upstream request per client request. A backend
that refuses the connection is skipped and the request goes to the next one (nothing was sent,
so this is safe for any method: what nginx's `proxy_next_upstream error` does); any other
failure is answered 502. `drain(backend)` takes a backend out of rotation before it is stopped,
`add(backend)` puts a new one in: a rolling restart.
"""

from __future__ import annotations

import http.server
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

__all__ = ["Balancer", "balancer"]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


class Balancer:
    def __init__(self, backends: list[str]) -> None:
        self._backends = list(backends)
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self.connect_failovers = 0
        self.upstream_errors = 0
        self._local = threading.local()
        self.server: http.server.ThreadingHTTPServer | None = None

    # --- rotation -------------------------------------------------------------------------

    def add(self, backend: str) -> None:
        with self._lock:
            if backend not in self._backends:
                self._backends.append(backend)

    def drain(self, backend: str) -> None:
        with self._lock:
            self._backends.remove(backend)

    def _order(self) -> list[str]:
        with self._lock:
            backends = list(self._backends)
        if not backends:
            return []
        start = next(self._turn) % len(backends)
        return backends[start:] + backends[:start]

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=30)
            self._local.client = client
        return client

    # --- forwarding -----------------------------------------------------------------------

    def forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream_headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
        for backend in self._order():
            try:
                response = self._client().request(
                    method, backend + path, headers=upstream_headers, content=body
                )
            except httpx.ConnectError:
                with self._lock:
                    self.connect_failovers += 1
                continue
            except httpx.HTTPError:
                with self._lock:
                    self.upstream_errors += 1
                return 502, [], b"upstream failed mid-request\n"
            kept = [(k, v) for k, v in response.headers.multi_items() if k not in _HOP_BY_HOP]
            kept = [(k, v) for k, v in kept if k.lower() != "content-encoding"]
            return response.status_code, kept, response.content
        return 503, [], b"no backend in rotation answered\n"


def _handler(lb: Balancer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _proxy(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            peer = self.client_address[0]
            headers = list(self.headers.items())
            forwarded = self.headers.get("x-forwarded-for")
            headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
            headers.append(("x-forwarded-for", f"{forwarded}, {peer}" if forwarded else peer))
            status, out_headers, content = lb.forward(self.command, self.path, headers, body)
            self.send_response(status)
            for key, value in out_headers:
                self.send_header(key, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _proxy

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def balancer(backends: list[str], port: int) -> Iterator[Balancer]:
    lb = Balancer(backends)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _handler(lb))
    server.daemon_threads = True
    lb.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield lb
    finally:
        server.shutdown()
        server.server_close()
