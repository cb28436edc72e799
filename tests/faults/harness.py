"""Throwaway services for fault tests: a PostgreSQL cluster and a Redis server of our own (the
shared ones on 5432/6379 serve everyone else's tests and are never restarted), and Lufy's
processes (serve, projector, worker) run as real subprocesses against them."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis as sync_redis

PG_BIN = Path(os.environ.get("LUFY_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
LUFY = [sys.executable, "-m", "lufy.cli"]
JWT_SECRET = "fault-test-secret-that-is-long-enough-for-hs256-0123456789"
# A browser's User-Agent: ingestion drops (known) bots' events unread, and httpx's is one.
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Any, timeout: float, what: str, interval: float = 0.1, on_timeout: Any = None
) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except AssertionError:
            raise
        except Exception as exc:
            last = exc
        time.sleep(interval)
    seen = f"; seen: {on_timeout()}" if on_timeout is not None else ""
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last}){seen}"
    )


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root; tests usually do."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class PgCluster:
    """A PostgreSQL cluster in a temp dir on a free port, trust auth, superuser `postgres`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lufy-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.root, pg.pw_uid, pg.pw_gid)
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "synchronous_commit = on\nmax_connections = 100\nshared_buffers = 32MB\n"
            )

    def url(self, dbname: str = "postgres", user: str = "postgres", password: str = "") -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args]
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        self._ctl("start", "-w", "-t", "30")

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects everyone and shuts down cleanly; `immediate` is a crash."""
        self._ctl("stop", "-w", "-t", "30", "-m", mode)

    def is_up(self) -> bool:
        try:
            psycopg.connect(self.url(), connect_timeout=1).close()
            return True
        except psycopg.OperationalError:
            return False

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A redis-server of our own, with an append-only file (fsynced every second): like the
    production Redis that docs/operations.md asks for, it keeps queued jobs across a restart."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lufy-faults-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--logfile",
                str(self.root / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = sync_redis.Redis.from_url(self.url)
        wait_for(client.ping, 10, "redis-server to answer")
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


class LufyProcess:
    """`lufy <command>` as a subprocess with its own log file (printed when a test fails)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*LUFY, *argv],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then wait; SIGKILL the whole process group if it overstays."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Stack:
    """One Lufy deployment against the throwaway services: env, processes, HTTP client."""

    def __init__(self, pg: PgCluster, dbname: str, redis: RedisServer, workdir: Path) -> None:
        self.pg = pg
        self.redis = redis
        self.dbname = dbname
        self.workdir = workdir
        self.port = free_port()
        self.processes: list[LufyProcess] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")},
            "DATABASE_URL": pg.url(dbname, "lufy_app", "lufy_app"),
            "DATABASE_ADMIN_URL": pg.url(dbname),
            "REDIS_URL": redis.url,
            "LUFY_ENV": "test",
            "JWT_SECRET": JWT_SECRET,
            "EMAIL_BACKEND": "file",
            "EMAIL_FILE_DIR": str(workdir / "mail"),
            "MEDIA_ROOT": str(workdir / "media"),
            "APP_URL": f"http://127.0.0.1:{self.port}",
            "RATE_LIMIT_GUEST": "100000/minute",
            "TRUSTED_PROXIES": "127.0.0.0/8",
            "RATE_LIMIT_USER": "100000/minute",
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.pg.url(self.dbname), autocommit=True)

    def start(self, name: str, *argv: str) -> LufyProcess:
        process = LufyProcess(name, list(argv), self.env, self.workdir)
        self.processes.append(process)
        return process

    def serve(self, name: str = "api") -> LufyProcess:
        process = self.start(name, "serve", "--port", str(self.port))

        def answers() -> bool:
            if not process.alive():
                raise AssertionError(f"{name} exited at start:\n{process.tail()}")
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200

        wait_for(answers, 30, f"{name} to answer /healthz")
        return process

    def projector(self, name: str = "projector") -> LufyProcess:
        return self.start(name, "projector")

    def worker(self, name: str = "worker", *argv: str) -> LufyProcess:
        return self.start(name, "worker", "--processes", "1", "--threads", "2", *argv)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.processes)

    def close(self) -> None:
        for process in self.processes:
            process.kill_group()


@contextlib.contextmanager
def stack(pg: PgCluster, template: str, workdir: Path) -> Iterator[Stack]:
    """A fresh database cloned from the migrated template and a fresh Redis."""
    dbname = f"lufy_fault_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{template}"')
    # Per-database role settings (the app role's search_path) are not cloned with a template;
    # migrating the clone (nothing left to apply) sets them as in production.
    from lufy.migrate import migrate

    migrate(pg.url(dbname), pg.url(dbname, "lufy_app", "lufy_app"))
    redis = RedisServer()
    redis.start()
    deployment = Stack(pg, dbname, redis, workdir)
    try:
        yield deployment
    finally:
        deployment.close()
        redis.destroy()
        if pg.is_up():
            with psycopg.connect(pg.url(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def _from_many_clients(request: httpx.Request) -> None:
    """Each request from another address (through the trusted proxy the deployment declares),
    as players behind a load balancer: per-caller rate limits (ingestion's 600/minute) apply
    to each player, not to this one test process."""
    import random

    if "x-forwarded-for" not in request.headers:
        octets = [random.randint(0, 255), random.randint(0, 255), random.randint(1, 254)]
        request.headers["x-forwarded-for"] = "10." + ".".join(map(str, octets))


class Load:
    """Background HTTP traffic from threads: each call of `make_request(client, i)` returns
    (status, payload-kept-for-the-assertions); results are collected in order of completion."""

    def __init__(self, base_url: str, make_request: Any, threads: int = 4) -> None:
        import threading

        self.base_url = base_url
        self.make_request = make_request
        self.results: list[tuple[float, int, Any]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)
        ]
        self._counter = 0

    def _next(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _run(self, _n: int) -> None:
        with httpx.Client(
            base_url=self.base_url,
            timeout=15,
            headers={"user-agent": BROWSER_UA},
            event_hooks={"request": [_from_many_clients]},
        ) as client:
            while not self._stop.is_set():
                i = self._next()
                try:
                    status, kept = self.make_request(client, i)
                except httpx.HTTPError as exc:
                    status, kept = 0, repr(exc)
                with self._lock:
                    self.results.append((time.monotonic(), status, kept))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def statuses(self) -> list[int]:
        with self._lock:
            return [status for _, status, _ in self.results]

    def since(self, t: float) -> list[tuple[float, int, Any]]:
        with self._lock:
            return [r for r in self.results if r[0] >= t]
