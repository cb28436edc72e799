"""E-mail backends (see the package docstring)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import msgspec

from lufy.logs import get_logger
from lufy.settings import Settings

__all__ = [
    "EmailBackend",
    "EmailDeliveryError",
    "EmailMessage",
    "FileBackend",
    "LogBackend",
    "MemoryBackend",
    "ResendBackend",
    "build_backend",
    "read_mailbox",
]

RESEND_URL = "https://api.resend.com/emails"
_log = get_logger(__name__)
_SAFE_KEY = re.compile(r"[^A-Za-z0-9._-]")


class EmailMessage(msgspec.Struct, frozen=True, kw_only=True):
    to: str
    subject: str
    text: str
    html: str


class EmailDeliveryError(Exception):
    """The message could not be handed over; `permanent` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class EmailBackend(Protocol):
    name: str

    def send(self, message: EmailMessage, *, key: str) -> None:
        """Hand `message` over once per `key` (a repeated key is a no-op or a replay)."""


class ResendBackend:
    """Resend's HTTP API. The job key travels as `Idempotency-Key`, so a job that runs twice
    (a crash after the send and before the ledger noted it) still sends one message."""

    name = "resend"

    def __init__(
        self,
        api_key: str,
        sender: str,
        *,
        url: str = RESEND_URL,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client = httpx.Client(
            transport=transport,
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "lufy"},
        )
        self._url = url
        self._sender = sender

    def send(self, message: EmailMessage, *, key: str) -> None:
        body = {
            "from": self._sender,
            "to": [message.to],
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
        }
        try:
            response = self._client.post(
                self._url, json=body, headers={"Idempotency-Key": key[:256]}
            )
        except httpx.HTTPError as exc:
            raise EmailDeliveryError(f"resend unreachable: {exc}") from None
        if response.status_code >= 400:
            detail = response.text[:300]
            permanent = response.status_code < 500 and response.status_code != 429
            raise EmailDeliveryError(
                f"resend answered {response.status_code}: {detail}", permanent=permanent
            )
        _log.info("e-mail sent", backend="resend", resend_id=_id(response), key=key)

    def close(self) -> None:
        self._client.close()


def _id(response: httpx.Response) -> str | None:
    try:
        value = response.json().get("id")
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


class FileBackend:
    """One JSON file per message, named after the key: a repeated key rewrites nothing."""

    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, key: str) -> Path:
        safe = _SAFE_KEY.sub("_", key)[:100]
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.directory / f"{safe}-{digest}.json"

    def send(self, message: EmailMessage, *, key: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(key)
        if target.exists():
            return
        document = {
            "to": message.to,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "sent_at": datetime.now(UTC).isoformat(),
        }
        # Written whole, then renamed: a reader never sees half a message.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=2)
        os.replace(tmp, target)
        _log.info("e-mail written", backend="file", path=str(target))


class LogBackend:
    name = "log"

    def send(self, message: EmailMessage, *, key: str) -> None:
        _log.info("e-mail (log backend, not sent)", to=message.to, subject=message.subject, key=key)


class MemoryBackend:
    """A fake for tests: keeps messages by key."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: dict[str, EmailMessage] = {}

    def send(self, message: EmailMessage, *, key: str) -> None:
        self.sent.setdefault(key, message)


def build_backend(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> EmailBackend:
    backend = settings.effective_email_backend
    if backend == "resend":
        assert settings.RESEND_API_KEY  # settings refuse resend without a key
        return ResendBackend(settings.RESEND_API_KEY, settings.EMAIL_FROM, transport=transport)
    if backend == "file":
        return FileBackend(settings.EMAIL_FILE_DIR)
    return LogBackend()


def read_mailbox(directory: Path, *, to: str | None = None) -> list[dict[str, Any]]:
    """The messages of a `file` backend directory, oldest first (optionally for one address)."""
    if not Path(directory).is_dir():
        return []
    messages = [
        json.loads(p.read_text(encoding="utf-8")) for p in Path(directory).glob("[!.]*.json")
    ]
    if to is not None:
        messages = [m for m in messages if m["to"] == to]
    return sorted(messages, key=lambda m: m["sent_at"])
