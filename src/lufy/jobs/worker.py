"""`lufy worker`: dramatiq worker processes for the job queues."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence

import dramatiq

from lufy.contexts import modules
from lufy.jobs.broker import configure
from lufy.jobs.registry import QUEUES
from lufy.logs import configure_logging, get_logger
from lufy.settings import get_settings

__all__ = ["import_job_modules", "run_worker", "serve_queues"]

_log = get_logger(__name__)


def import_job_modules() -> list[str]:
    """Import the `jobs` module of every context `lufy.contexts` lists with jobs, which
    declares its `@job` actors; their names."""
    imported = modules("jobs")
    for name in imported:
        importlib.import_module(name)
    return imported


def serve_queues(queues: Sequence[str], threads: int, stop: threading.Event) -> None:
    """Run a dramatiq worker in this process until `stop` is set."""
    settings = get_settings()
    modules = import_job_modules()  # their actors, declared before the broker takes them
    runtime = configure(settings, pool_size=threads + 1)
    runtime.boot()
    worker = dramatiq.Worker(runtime.broker, queues=set(queues), worker_threads=threads)
    worker.start()
    _log.info("worker started", queues=list(queues), threads=threads, job_modules=modules)
    try:
        stop.wait()
    finally:
        worker.stop(timeout=30_000)
        runtime.close()
        _log.info("worker stopped")


def _child(queues: Sequence[str], threads: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve_queues(queues, threads, stop)


def run_worker(processes: int = 1, threads: int = 4, queues: Sequence[str] | None = None) -> int:
    """Serve `queues` (default: all of CONTRACT's) with `processes` x `threads`; exit status."""
    settings = get_settings()
    configure_logging(settings.LUFY_ENV)
    chosen = list(queues or QUEUES)
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown:
        print(
            f"lufy worker: unknown queue {unknown[0]!r} (known: {', '.join(QUEUES)})",
            file=sys.stderr,
        )
        return 2
    if processes == 1:
        _child(chosen, threads)
        return 0
    children: list[int] = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            try:
                _child(chosen, threads)
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for pid in children:
        _, code = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(code) not in (0, -signal.SIGTERM, -signal.SIGINT):
            status = 1
    return status
