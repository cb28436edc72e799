"""The API and the workers through PgBouncer in transaction mode (Debian's pgbouncer).

PgBouncer hands every transaction to whichever of its few server connections is free, so this
shows that nothing Lufy needs outlives a transaction: the caller bound with
`set_config(..., true)` (Row-Level Security), and no server-side prepared statement is relied
on (`DATABASE_PREPARED_STATEMENTS=false`, as PgBouncer before 1.21 requires). The projector
holds session advisory locks (leadership) and LISTENs, so it connects directly, as
docs/operations.md says.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.faults.harness import BROWSER_UA, PgCluster, Stack, free_port, wait_for

pytestmark = pytest.mark.slow

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
SERVER_CONNECTIONS = 2


class PgBouncer:
    def __init__(self, pg: PgCluster) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lufy-pgbouncer-"))
        self.port = free_port()
        (self.root / "userlist.txt").write_text('"lufy_app" "lufy_app"\n"pgbouncer" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={pg.port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.root}/userlist.txt\n"
            "admin_users = pgbouncer\n"
            "pool_mode = transaction\n"
            # Few server connections for many clients: every transaction may land anywhere.
            f"default_pool_size = {SERVER_CONNECTIONS}\n"
            "max_client_conn = 500\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {self.root}/pgbouncer.log\n"
            f"pidfile = {self.root}/pgbouncer.pid\n"
        )
        argv = [PGBOUNCER, str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            pg_user = pwd.getpwnam("postgres")
            for path in (self.root, *self.root.iterdir()):
                os.chown(path, pg_user.pw_uid, pg_user.pw_gid)
            argv = ["runuser", "-u", "postgres", "--", *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 20, "pgbouncer to answer")

    def _answers(self) -> bool:
        psycopg.connect(self.admin_url, connect_timeout=1).close()
        return True

    @property
    def admin_url(self) -> str:
        return f"postgresql://pgbouncer@127.0.0.1:{self.port}/pgbouncer"

    def url(self, dbname: str) -> str:
        return f"postgresql://lufy_app:lufy_app@127.0.0.1:{self.port}/{dbname}"

    def transactions(self, dbname: str) -> int:
        """Transactions PgBouncer has passed to `dbname` (its SHOW STATS)."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            cur = conn.cursor()
            cur.execute("SHOW STATS")
            columns = [c.name for c in cur.description or []]
            for row in cur.fetchall():
                record = dict(zip(columns, row, strict=True))
                if record["database"] == dbname:
                    return int(record["total_xact_count"])
        return 0

    def destroy(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def bouncer(fault_pg: PgCluster) -> Iterator[PgBouncer]:
    pool = PgBouncer(fault_pg)
    yield pool
    pool.destroy()


def test_api_and_workers_through_transaction_mode_pgbouncer_keep_rls_and_run_jobs(
    deployment: Stack, bouncer: PgBouncer
) -> None:
    direct_url = deployment.env["DATABASE_URL"]
    deployment.env["DATABASE_URL"] = bouncer.url(deployment.dbname)
    deployment.env["DATABASE_PREPARED_STATEMENTS"] = "false"
    deployment.serve()
    deployment.worker()
    # The projector (session advisory locks, LISTEN) connects directly.
    deployment.env["DATABASE_URL"] = direct_url
    deployment.projector()

    users = [f"pooled-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(8)]
    tokens: dict[str, str] = {}
    client = httpx.Client(
        base_url=deployment.base_url, timeout=30, headers={"user-agent": BROWSER_UA}
    )
    for email in users:
        response = client.post(
            "/api/auth/sign-up",
            json={
                "email": email,
                "password": "a long enough passphrase 42",
                "display_name": "Pooled",
                "role": "listener",
            },
        )
        assert response.status_code == 201, response.text
        signed_in = client.post(
            "/api/auth/sign-in", json={"email": email, "password": "a long enough passphrase 42"}
        )
        assert signed_in.status_code == 200, signed_in.text
        tokens[email] = signed_in.json()["access_token"]

    # Many clients at once on two server connections: each must see itself, only ever.
    wrong: list[str] = []
    failed: list[str] = []

    def as_user(email: str) -> None:
        with httpx.Client(base_url=deployment.base_url, timeout=30) as own:
            headers = {"Authorization": f"Bearer {tokens[email]}", "user-agent": BROWSER_UA}
            for _ in range(15):
                session = own.get("/api/auth/session", headers=headers)
                sessions = own.get("/api/auth/sessions", headers=headers)
                if session.status_code != 200 or sessions.status_code != 200:
                    failed.append(f"{session.status_code} {sessions.status_code}")
                    continue
                if session.json()["user"]["email"] != email:
                    wrong.append(f"{email} saw {session.json()['user']['email']}")
                if len(sessions.json()) != 1:
                    wrong.append(f"{email} saw {len(sessions.json())} sessions")

    threads = [threading.Thread(target=as_user, args=(e,)) for e in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failed == [], deployment.logs()
    assert wrong == []

    # The projector turns each sign-up into an e-mail job; the worker (through PgBouncer)
    # records it in the ledger and sends it.
    mail = Path(deployment.env["EMAIL_FILE_DIR"])

    def everyone_mailed() -> bool:
        sent = (
            {json.loads(p.read_text())["to"] for p in mail.glob("*.json")}
            if mail.exists()
            else set()
        )
        return set(users) <= sent

    wait_for(everyone_mailed, 90, "a verification e-mail per sign-up", on_timeout=deployment.logs)
    with deployment.admin() as admin:
        done = admin.execute(
            "SELECT count(*) FROM lufy.jobs WHERE status = 'done' AND queue = 'email-send'"
        ).fetchone()
    assert done is not None
    assert done[0] >= len(users)
    # And it really went through the pooler: far more transactions than server connections.
    assert bouncer.transactions(deployment.dbname) > 100 * SERVER_CONNECTIONS
    client.close()
