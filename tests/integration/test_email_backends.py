"""E-mail: backends (file, Resend over HTTP, log, memory), rendering, reactor -> job."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import lufy.accounts.jobs  # noqa: F401  (declares send_email)
from lufy.accounts.emails import EmailPayload, deliver, render
from lufy.accounts.events import MagicLinkRequested, PasswordChanged
from lufy.accounts.reactors import AccountEmails
from lufy.accounts.secrets import TokenSealer
from lufy.email import (
    EmailDeliveryError,
    EmailMessage,
    FileBackend,
    LogBackend,
    MemoryBackend,
    ResendBackend,
    build_backend,
    read_mailbox,
)
from lufy.eventstore import EventMetadata, RecordedEvent
from lufy.jobs.broker import current
from lufy.jobs.ledger import enqueue
from lufy.jobs.testing import InProcessWorker
from lufy.settings import Settings, load_settings

MESSAGE = EmailMessage(to="ada@example.com", subject="Hi", text="plain", html="<p>html</p>")


def test_the_file_backend_writes_one_json_document_per_key(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / "mail")
    backend.send(MESSAGE, key="event-1")
    backend.send(MESSAGE, key="event-1")
    backend.send(EmailMessage(to="bob@example.com", subject="S", text="t", html="h"), key="e2")
    files = sorted((tmp_path / "mail").glob("*.json"))
    assert len(files) == 2
    document = json.loads(backend.path_for("event-1").read_text())
    assert set(document) == {"to", "subject", "text", "html", "sent_at"}
    assert document["to"] == "ada@example.com"
    assert document["html"] == "<p>html</p>"
    assert datetime.fromisoformat(document["sent_at"]).tzinfo is not None
    assert [m["to"] for m in read_mailbox(tmp_path / "mail", to="bob@example.com")] == [
        "bob@example.com"
    ]


def test_a_key_with_path_characters_stays_inside_the_directory(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path)
    backend.send(MESSAGE, key="../../etc/passwd")
    assert backend.path_for("../../etc/passwd").parent == tmp_path
    assert len(list(tmp_path.glob("*.json"))) == 1


def _resend(handler: Any) -> ResendBackend:
    return ResendBackend(
        "re_test_key", "Lufy <no-reply@lufy.test>", transport=httpx.MockTransport(handler)
    )


def test_the_resend_backend_posts_the_message_with_an_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "49a3999c"})

    _resend(handler).send(MESSAGE, key="event-42")
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.resend.com/emails"
    assert request.headers["Authorization"] == "Bearer re_test_key"
    assert request.headers["Idempotency-Key"] == "event-42"
    assert json.loads(request.content) == {
        "from": "Lufy <no-reply@lufy.test>",
        "to": ["ada@example.com"],
        "subject": "Hi",
        "text": "plain",
        "html": "<p>html</p>",
    }


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (429, False), (422, True)])
def test_resend_errors_say_whether_a_retry_can_help(status: int, permanent: bool) -> None:
    backend = _resend(lambda _r: httpx.Response(status, json={"message": "nope"}))
    with pytest.raises(EmailDeliveryError) as caught:
        backend.send(MESSAGE, key="k")
    assert caught.value.permanent is permanent
    assert str(status) in str(caught.value)


def test_an_unreachable_resend_is_a_retryable_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(EmailDeliveryError) as caught:
        _resend(handler).send(MESSAGE, key="k")
    assert not caught.value.permanent


def test_the_backend_follows_the_settings(tmp_path: Path) -> None:
    assert isinstance(build_backend(load_settings(EMAIL_FILE_DIR=tmp_path)), FileBackend)
    assert isinstance(build_backend(load_settings(RESEND_API_KEY="re_x")), ResendBackend)
    assert isinstance(build_backend(load_settings(EMAIL_BACKEND="log")), LogBackend)


def test_the_memory_fake_keeps_one_message_per_key() -> None:
    fake = MemoryBackend()
    fake.send(MESSAGE, key="a")
    fake.send(EmailMessage(to="x@example.com", subject="s", text="t", html="h"), key="a")
    assert fake.sent == {"a": MESSAGE}


# --- rendering ------------------------------------------------------------------------------


def test_a_magic_link_email_links_to_app_url_with_the_token_in_text_and_html() -> None:
    payload = EmailPayload(template="magic_link", to="ada@example.com", display_name="<Ada>")
    message = render(payload, app_url="https://lufy.example", token="tok-123_abc")
    assert "https://lufy.example/magic-link?token=tok-123_abc" in message.text
    assert 'href="https://lufy.example/magic-link?token=tok-123_abc"' in message.html
    assert "&lt;Ada&gt;" in message.html
    assert "<Ada>" not in message.html
    assert "10 minutes" in message.text


def test_deliver_opens_the_sealed_token_with_the_shared_secret(tmp_path: Path) -> None:
    settings = load_settings(
        JWT_SECRET="s" * 40, EMAIL_FILE_DIR=tmp_path, APP_URL="https://lufy.example"
    )
    sealed = TokenSealer("s" * 40).seal("the-token", purpose="password_reset")
    payload = {
        "template": "password_reset",
        "to": "ada@example.com",
        "display_name": "Ada",
        "sealed_token": sealed,
    }
    fake = MemoryBackend()
    deliver(payload, key="k1", settings=settings, backend=fake)
    assert "https://lufy.example/reset-password?token=the-token" in fake.sent["k1"].text
    assert "1 hour" in fake.sent["k1"].text

    other = load_settings(JWT_SECRET="t" * 40, EMAIL_FILE_DIR=tmp_path)
    with pytest.raises(EmailDeliveryError, match="JWT_SECRET") as caught:
        deliver(payload, key="k2", settings=other, backend=fake)
    assert caught.value.permanent
    # A token sealed for one purpose does not open as another.
    with pytest.raises(EmailDeliveryError):
        deliver({**payload, "template": "magic_link"}, key="k3", settings=settings, backend=fake)


def test_a_malformed_payload_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(EmailDeliveryError, match="bad e-mail payload") as caught:
        deliver(
            {"template": "spam", "to": "x"},
            key="k",
            settings=load_settings(),
            backend=MemoryBackend(),
        )
    assert caught.value.permanent


# --- reactor and the real email-send worker ----------------------------------------------------


def _recorded(event: Any) -> RecordedEvent:
    now = datetime.now(UTC)
    return RecordedEvent(
        global_position=1,
        transaction_id=1,
        event_id=uuid.uuid4(),
        stream_type="user",
        stream_id="u",
        stream_version=1,
        type="x",
        schema_version=1,
        data=event,
        metadata=EventMetadata(),
        occurred_at=now,
        recorded_at=now,
    )


def test_the_reactor_asks_for_one_send_email_job_keyed_by_the_event_id() -> None:
    event = _recorded(
        MagicLinkRequested(
            user_id=uuid.uuid4(),
            email="ada@example.com",
            display_name="Ada",
            token_hash="h",
            sealed_token="sealed",
            expires_at=datetime.now(UTC) + timedelta(minutes=10),
        )
    )
    [spec] = AccountEmails().jobs(event)
    assert (spec.actor, spec.queue, spec.key) == ("send_email", "email-send", str(event.event_id))
    assert spec.payload == {
        "template": "magic_link",
        "to": "ada@example.com",
        "display_name": "Ada",
        "sealed_token": "sealed",
    }
    assert "h" not in spec.payload.values()  # the hash stays in the database


def test_an_operator_password_set_sends_no_email() -> None:
    event = _recorded(
        PasswordChanged(
            user_id=uuid.uuid4(),
            email="a@example.com",
            display_name="A",
            password_hash="x",
            via="cli",
        )
    )
    assert AccountEmails().jobs(event) == []


async def test_a_reactor_job_goes_through_the_email_send_worker_to_the_file_backend(
    settings: Settings,
) -> None:
    sealed = TokenSealer(settings.jwt_secret).seal("worker-token", purpose="magic_link")
    event = _recorded(
        MagicLinkRequested(
            user_id=uuid.uuid4(),
            email="worker@example.com",
            display_name="W",
            token_hash="h",
            sealed_token=sealed,
            expires_at=datetime.now(UTC) + timedelta(minutes=10),
        )
    )
    with InProcessWorker(settings, queues=["email-send"]) as worker:
        async with await psycopg.AsyncConnection.connect(settings.DATABASE_URL) as conn:
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.current_role', 'system', true)")
                queued = await AccountEmails().record(conn, [event])
            await enqueue(current(), queued)
            # Delivered twice (as at-least-once delivery may): still one e-mail.
            await enqueue(current(), queued)
        worker.wait_until_finished(timeout=30)
    [message] = read_mailbox(settings.EMAIL_FILE_DIR, to="worker@example.com")
    assert "http://testserver.local/magic-link?token=worker-token" in message["text"]


@pytest.mark.parametrize(
    ("via", "says"), [("change", "your other sessions were"), ("reset", "every session was")]
)
def test_the_password_changed_notice_says_which_sessions_ended(via: str, says: str) -> None:
    event = _recorded(
        PasswordChanged(
            user_id=uuid.uuid4(),
            email="a@example.com",
            display_name="A",
            password_hash="x",
            via=via,
        )
    )
    [spec] = AccountEmails().jobs(event)
    fake = MemoryBackend()
    deliver(spec.payload, key=spec.key, settings=load_settings(), backend=fake)
    message = fake.sent[spec.key]
    assert message.subject == "Your Lufy password was changed"
    assert f"{says} signed out" in message.text
    assert f"{says} signed out" in message.html
