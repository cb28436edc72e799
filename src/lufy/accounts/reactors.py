"""Account e-mails follow the log: one `send_email` job per event that implies an e-mail."""

from __future__ import annotations

from typing import ClassVar

from lufy.accounts.events import (
    EmailVerificationRequested,
    MagicLinkRequested,
    PasswordChanged,
    PasswordResetRequested,
    UserErased,
)
from lufy.eventstore.envelope import RecordedEvent
from lufy.jobs import JobSpec
from lufy.projections.reactors import Reactor

__all__ = ["REACTORS", "AccountEmails", "ErasureFollowUp"]

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


class ErasureFollowUp(Reactor):
    """An erased person's tracks and media are deleted by a job as well: the API and the CLI
    delete them at once, and this job finishes the work if that process died halfway."""

    name: ClassVar[str] = "accounts_erasure"
    handles: ClassVar[frozenset[str]] = frozenset({"accounts.user_erased"})

    def jobs(self, event: RecordedEvent) -> list[JobSpec]:
        data = event.data
        if not isinstance(data, UserErased):
            return []
        return [
            JobSpec(
                actor="finish_erasure",
                queue="media-processing",
                payload={"user_id": str(data.user_id)},
                key=str(event.event_id),
            )
        ]


REACTORS = [AccountEmails(), ErasureFollowUp()]
