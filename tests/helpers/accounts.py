"""Accounts for other contexts' tests: a verified user of a role, signed in, in one call.

    from tests.helpers.accounts import create_user, auth_headers

    artist = await create_user(container, role="artist")
    response = await client.get("/api/music/tracks", headers=artist.headers)
    # artist.id is the user id (= the artist id), artist.access_token a 15-minute JWT

It goes through AccountService (the same events and inline read models as HTTP sign-up and
sign-in), so the token passes the authentication middleware of `create_app(container)`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from lufy.accounts.clients import ClientInfo
from lufy.bootstrap import Container

__all__ = [
    "DEFAULT_PASSWORD",
    "TestUser",
    "auth_headers",
    "create_user",
    "deliver_account_emails",
    "inbox",
    "last_token",
    "token_from",
]

DEFAULT_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TestUser:
    __test__ = False  # not a pytest test class

    id: uuid.UUID
    email: str
    password: str
    role: str
    display_name: str
    access_token: str
    refresh_token: str
    session_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return auth_headers(self.access_token)


def auth_headers(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def create_user(
    container: Container,
    *,
    role: str = "listener",
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    display_name: str | None = None,
    verified: bool = True,
) -> TestUser:
    """Register a user (verified unless told otherwise) and sign them in."""
    service = container.accounts
    email = email or f"{role}-{uuid.uuid4().hex[:12]}@example.com"
    user = await service.register(
        email=email,
        password=password,
        role=role,
        display_name=display_name or f"Test {role.title()}",
        verified=verified,
        via="cli",
    )
    tokens = await service.sign_in(
        email=email, password=password, client=ClientInfo(user_agent="pytest", ip="127.0.0.1")
    )
    principal = service.access_tokens.verify(tokens.access_token)
    return TestUser(
        id=user.id,
        email=user.email,
        password=password,
        role=role,
        display_name=user.display_name,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        session_id=principal.session_id,
    )


# --- e-mail -------------------------------------------------------------------------------


async def deliver_account_emails(container: Container) -> int:
    """Run the accounts e-mail reactor over the whole log and deliver its jobs synchronously
    (what the projector and the email-send worker do in production). Idempotent: the file
    backend writes one file per job key. Returns how many jobs the log implies.

    Reads committed events directly (not through the gap-free reader, whose barrier waits for
    every transaction in flight on the cluster, other test processes' included)."""
    from lufy.accounts.emails import deliver
    from lufy.accounts.reactors import AccountEmails
    from lufy.eventstore import RecordedEvent

    reactor = AccountEmails()
    codec = container.store.codec
    async with container.db.connection() as conn:
        cur = await conn.execute(
            "SELECT global_position, event_id, stream_type, stream_id, stream_version, type, "
            "schema_version, data::text, metadata::text, occurred_at, recorded_at "
            "FROM lufy.events WHERE type = ANY(%s) ORDER BY global_position",
            [sorted(reactor.handles)],
        )
        rows = await cur.fetchall()
    count = 0
    for row in rows:
        event = RecordedEvent(
            global_position=row[0],
            transaction_id=0,
            event_id=row[1],
            stream_type=row[2],
            stream_id=row[3],
            stream_version=row[4],
            type=row[5],
            schema_version=row[6],
            data=codec.decode(row[5], row[6], row[7]),
            metadata=codec.decode_metadata(row[8]),
            occurred_at=row[9],
            recorded_at=row[10],
        )
        for spec in reactor.jobs(event):
            deliver(spec.payload, key=spec.key, settings=container.settings)
            count += 1
    return count


def inbox(container: Container, to: str) -> list[dict[str, Any]]:
    """Messages the file backend wrote for `to`, oldest first."""
    from lufy.email import read_mailbox

    return read_mailbox(container.settings.EMAIL_FILE_DIR, to=to)


def token_from(message: dict[str, Any]) -> str:
    """The `token` query parameter of the link in an e-mail's text body."""
    match = re.search(r"https?://\S+\?token=([A-Za-z0-9_\-%]+)", message["text"])
    assert match is not None, message["text"]
    return unquote(match.group(1))


async def last_token(container: Container, to: str, subject_contains: str) -> str:
    """Deliver pending e-mails, then the token of the newest e-mail to `to` whose subject
    contains `subject_contains`."""
    await deliver_account_emails(container)
    matching = [m for m in inbox(container, to) if subject_contains in m["subject"]]
    assert matching, f"no e-mail to {to} about {subject_contains!r}"
    return token_from(matching[-1])
