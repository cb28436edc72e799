"""Container health checks for processes that serve no HTTP: `python -m lufy.healthcheck NAME`.

`projector` and `worker` are healthy when what they cannot work without answers within 2 s:
PostgreSQL (as the app role) and Redis. Exit 0 when healthy, 1 with one line on stderr
otherwise. (The API's health check is `GET /readyz`.)
"""

from __future__ import annotations

import sys

import psycopg
import redis

from lufy.settings import load_settings
from lufy.sqlfiles import load_queries

__all__ = ["check", "main"]

_Q = load_queries("lufy", "healthcheck.sql")

_TIMEOUT = 2


def check(name: str) -> str | None:
    """None when healthy, else why not."""
    if name not in ("projector", "worker"):
        return f"unknown process {name!r} (projector or worker)"
    settings = load_settings()
    try:
        with psycopg.connect(settings.DATABASE_URL, connect_timeout=_TIMEOUT) as conn:
            conn.execute(_Q.ping)
    except psycopg.Error as exc:
        return f"database: {' '.join(str(exc).split())}"
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=_TIMEOUT, socket_timeout=_TIMEOUT
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"redis: {exc}"
    finally:
        client.close()
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lufy.healthcheck projector|worker", file=sys.stderr)
        return 2
    try:
        problem = check(args[0])
    except Exception as exc:  # a bad setting: one line, like every other entrypoint
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
