"""The real runtime for account e-mails: sign-up over HTTP -> log -> accounts_emails reactor in
the projector -> send_email on the email-send worker -> file backend -> the link works."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from psycopg import AsyncConnection

import lufy.accounts.jobs  # noqa: F401  (declares send_email)
from lufy.accounts.reactors import AccountEmails
from lufy.bootstrap import Container
from lufy.email import read_mailbox
from lufy.jobs.testing import InProcessWorker
from lufy.projections.discovery import all_projections
from lufy.projections.runner import Projector, ProjectorOptions
from lufy.settings import Settings
from tests.helpers.accounts import token_from
from tests.helpers.http import api_client

FAST = ProjectorOptions(
    batch_size=100,
    poll_interval=0.1,
    retry_delays=(0.05, 0.1),
    failed_check_interval=0.1,
    lead_retry_interval=0.2,
    maintenance=False,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"RATE_LIMIT_ENABLED": False})


def test_the_projector_discovers_the_accounts_reactor_and_projections() -> None:
    names = {p.name for p in all_projections()}
    assert {"accounts_emails", "accounts_users", "accounts_sessions", "accounts_tokens"} <= names


async def test_a_sign_up_email_arrives_through_projector_and_worker(
    settings: Settings, container: Container, admin_conn: AsyncConnection[Any]
) -> None:
    projector = Projector(settings, [AccountEmails()], options=FAST)
    running = asyncio.create_task(projector.run())
    try:
        # The reactor starts at the head of the log: sign up only once it has its place.
        for _ in range(300):
            cur = await admin_conn.execute(
                "SELECT 1 FROM lufy.checkpoints WHERE name = 'accounts_emails'"
            )
            if await cur.fetchone():
                break
            await asyncio.sleep(0.1)
        with InProcessWorker(settings, queues=["email-send"], threads=1) as worker:
            async with api_client(container) as client:
                response = await client.post(
                    "/api/auth/sign-up",
                    json={
                        "email": "runtime@example.com",
                        "password": "a real runtime passphrase",
                        "display_name": "Rita",
                    },
                )
                assert response.status_code == 201, response.text
                for _ in range(300):
                    if read_mailbox(settings.EMAIL_FILE_DIR, to="runtime@example.com"):
                        break
                    await asyncio.sleep(0.1)
                worker.wait_until_finished(timeout=60)
                [message] = read_mailbox(settings.EMAIL_FILE_DIR, to="runtime@example.com")
                verified = await client.post(
                    "/api/auth/verify-email", json={"token": token_from(message)}
                )
                assert verified.status_code == 200, verified.text
                assert verified.json()["user"]["email_verified"] is True
    finally:
        projector.stop()
        await asyncio.wait_for(running, timeout=20)
    cur = await admin_conn.execute(
        "SELECT status, count(*) FROM lufy.jobs WHERE actor = 'send_email' GROUP BY 1"
    )
    assert dict(await cur.fetchall()) == {"done": 1}
