"""Process commands (`lufy migrate`, `serve`, `worker`, `projector`, `dev`): the long-running
processes and their start-up; domain commands live with their context (`catalog.commands`)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

import click

from lufy.jobs.worker import run_worker
from lufy.logs import configure_logging
from lufy.settings import get_settings

__all__ = ["dev_command", "migrate_command", "projector_command", "serve_command", "worker_command"]


@click.command("migrate")
def migrate_command() -> None:
    """Apply sql/ migrations and projections/ definitions (idempotent, under an advisory lock)."""
    from lufy.migrate import migrate  # cheap CLI start: ~15 ms more for `lufy --help`
    from lufy.privacy import sealing  # cheap CLI start: ~15 ms (cryptography)

    settings = get_settings()
    sealing.configure(
        settings.DATA_KEY_SECRET, settings.DATA_KEY_PREVIOUS_SECRETS
    )  # the sealing of existing events wraps keys
    report = migrate(
        settings.DATABASE_ADMIN_URL,
        settings.DATABASE_URL,
        on_step=lambda message: click.echo(f"  {message}", err=True),
        analyst_password=settings.analyst_password,
    )
    created = " (database created)" if report.created_database else ""
    click.echo(
        f"migrated{created}: {len(report.applied)} migration(s), "
        f"{len(report.projections)} projection definition(s) applied",
        err=True,
    )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve_command(host: str, port: int, workers: int) -> None:
    """The HTTP API, on uvicorn (httptools, uvloop)."""
    from lufy.web.server import serve  # cheap CLI start: uvicorn is imported by `serve` only

    settings = get_settings()  # fail fast on bad configuration, before forking workers
    configure_logging(settings.LUFY_ENV)
    serve(host, port, workers)


@click.command("worker")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 32))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--queues", default=None, help="comma-separated subset of the queues")
def worker_command(processes: int, threads: int, queues: str | None) -> None:
    """dramatiq workers for analytics-refresh, email-send and media-processing."""

    get_settings()
    sys.exit(
        run_worker(
            processes=processes, threads=threads, queues=queues.split(",") if queues else None
        )
    )


@click.command("projector")
def projector_command() -> None:
    """The projection daemon: every async projection and reactor."""
    from lufy.bootstrap import bootstrap  # cheap CLI start: every service, ~330 ms
    from lufy.projections.runner import run_projector  # cheap CLI start: the projector, ~7 ms

    # One container for the process: the projector takes its settings and event store.
    run_projector(bootstrap(get_settings(), pool_size=2))


@click.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def dev_command(host: str, port: int) -> None:
    """Everything for a local run: migrate, then API, projector and workers until Ctrl-C."""
    settings = get_settings()
    lufy = [sys.executable, "-m", "lufy.cli"]
    env = dict(os.environ)
    if not settings.JWT_SECRET:
        # One random key for the whole local stack: the API signs what the workers must open.
        click.echo("lufy dev: JWT_SECRET is not set; using a random key for this run", err=True)
        env["JWT_SECRET"] = secrets.token_urlsafe(48)
    subprocess.run([*lufy, "migrate"], check=True, env=env)
    children = [
        subprocess.Popen([*lufy, "serve", "--host", host, "--port", str(port)], env=env),
        subprocess.Popen([*lufy, "projector"], env=env),
        subprocess.Popen([*lufy, "worker"], env=env),
    ]
    click.echo(
        f"lufy dev: API on http://{host}:{port} (docs at /schema); Ctrl-C stops all", err=True
    )

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        stop(signal.SIGTERM, None)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
    failed = [c.args for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
    if failed:
        raise SystemExit(1)
