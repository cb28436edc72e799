"""Account e-mails follow the log: one `send_email` job per event that implies an e-mail."""

from __future__ import annotations

from typing import ClassVar

from lufy.accounts.events import (
    EmailVerificationRequested,
    MagicLinkRequested,
    PasswordChanged,
    PasswordResetRequested,
)
from lufy.eventstore.envelope import RecordedEvent
from lufy.jobs import JobSpec
from lufy.jobs.reactors import Reactor

__all__ = ["REACTORS", "AccountEmails"]

_TEMPLATES: dict[type, str] = {
    EmailVerificationRequested: "verify_email",
    MagicLinkRequested: "magic_link",
    PasswordResetRequested: "password_reset",
    PasswordChanged: "password_changed",
}


class AccountEmails(Reactor):
    name: ClassVar[str] = "accounts_emails"
    handles: ClassVar[frozenset[str]] = frozenset(
        {
            "accounts.email_verification_requested",
            "accounts.magic_link_requested",
            "accounts.password_reset_requested",
            "accounts.password_changed",
        }
    )

    def jobs(self, event: RecordedEvent) -> list[JobSpec]:
        data = event.data
        template = _TEMPLATES.get(type(data))
        if template is None:
            return []
        if isinstance(data, PasswordChanged):
            if data.via == "cli":
                return []
            payload = {
                "template": template,
                "to": data.email,
                "display_name": data.display_name,
                "via": data.via,
            }
        else:
            assert isinstance(
                data, EmailVerificationRequested | MagicLinkRequested | PasswordResetRequested
            )
            payload = {
                "template": template,
                "to": data.email,
                "display_name": data.display_name,
                "sealed_token": data.sealed_token,
            }
        return [
            JobSpec(
                actor="send_email", queue="email-send", payload=payload, key=str(event.event_id)
            )
        ]


REACTORS = [AccountEmails()]
