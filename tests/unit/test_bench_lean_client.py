"""`bench/streaming_files.LeanClient`, the minimal HTTP/1.1 client of `bench/streaming.py`: it
must read both body framings on one keep-alive connection (granian's static files are chunked,
Lufy answers with Content-Length), or the lean-client figure would time the wrong bytes."""

from __future__ import annotations

import importlib.util
import socket
import threading
from pathlib import Path
from types import ModuleType

import pytest

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "streaming_files.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_streaming_files", _BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Two answers on one connection, then the server closes it.
_ANSWERS = [
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    # Chunked, split across writes and with a chunk extension, as a server may send it.
    b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n",
    b"4\r\ndefg\r\n0\r\n\r\n",
]


def _serve(listener: socket.socket, requests: list[bytes]) -> None:
    conn, _ = listener.accept()
    with conn:
        buffer = b""
        for answer in ([_ANSWERS[0]], _ANSWERS[1:]):
            while b"\r\n\r\n" not in buffer:
                buffer += conn.recv(4096)
            request, _, buffer = buffer.partition(b"\r\n\r\n")
            requests.append(request)
            for part in answer:
                conn.sendall(part)


def test_lean_client_reads_both_framings_on_one_connection() -> None:
    module = _module()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    requests: list[bytes] = []
    server = threading.Thread(target=_serve, args=(listener, requests), daemon=True)
    server.start()
    client = module.LeanClient(f"http://127.0.0.1:{port}", {"authorization": "Bearer t"})
    try:
        assert client.get("/a") == (200, b"hello")
        assert client.get("/b?x=1") == (404, b"abcdefg")
        server.join(timeout=5)
        with pytest.raises(RuntimeError, match="closed"):
            client.get("/c")
    finally:
        client.close()
        listener.close()
    assert requests[0].startswith(b"GET /a HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"\r\nauthorization: Bearer t" in requests[0]
    assert requests[1].startswith(b"GET /b?x=1 HTTP/1.1\r\n")


def test_fetch_refuses_an_answer_other_than_200() -> None:
    module = _module()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = threading.Thread(target=_serve, args=(listener, []), daemon=True)
    server.start()
    client = module.LeanClient(f"http://127.0.0.1:{port}")
    try:
        client.fetch(["/a"])
        with pytest.raises(RuntimeError, match="404"):
            client.fetch(["/b"])
    finally:
        client.close()
        listener.close()
