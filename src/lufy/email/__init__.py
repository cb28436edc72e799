"""Outgoing e-mail: one message type and interchangeable backends.

`resend` (HTTP API, when RESEND_API_KEY is set), `file` (one JSON file per message in
EMAIL_FILE_DIR: {to, subject, text, html, sent_at}; the default without a key, and what tests
read), `log` (a log line, nothing sent) and `memory` (a fake for tests of code that sends).
Every backend is idempotent on the key it is given, the job key, because jobs may run twice.
"""

from __future__ import annotations

from lufy.email.backends import (
    EmailBackend,
    EmailDeliveryError,
    EmailMessage,
    FileBackend,
    LogBackend,
    MemoryBackend,
    ResendBackend,
    build_backend,
    read_mailbox,
)

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
