"""The account e-mails: what each says, rendered as text and HTML, with links from FRONTEND_URL.

The e-mail job gets a payload naming a template; tokens arrive sealed (see secrets.py) and are
opened here, in the worker, so the plain token exists only in the e-mail and in this process.
"""

from __future__ import annotations

import html
from typing import Any, Literal
from urllib.parse import urlencode

import msgspec

from lufy.accounts.secrets import TokenSealer
from lufy.email import EmailBackend, EmailDeliveryError, EmailMessage, build_backend
from lufy.privacy import sealing
from lufy.settings import Settings

__all__ = ["EmailPayload", "deliver", "render"]

Template = Literal["verify_email", "magic_link", "password_reset", "password_changed"]


class EmailPayload(msgspec.Struct, frozen=True, kw_only=True):
    template: Template
    to: str
    display_name: str
    sealed_token: str | None = None
    # For password_changed: change (other sessions signed out) or reset (all of them).
    via: str | None = None


class _Copy(msgspec.Struct, frozen=True):
    subject: str
    intro: str
    action: str
    path: str
    validity: str
    outro: str


_COPY: dict[str, _Copy] = {
    "verify_email": _Copy(
        subject="Confirm your e-mail address for Lufy",
        intro="Welcome to Lufy! Please confirm that this is your e-mail address.",
        action="Confirm my address",
        path="/verify-email",
        validity="The link works once and expires in 24 hours.",
        # Confirming an account someone else created would keep their password working.
        outro="If you did not create a Lufy account, do not follow the link: whoever did chose "
        "its password. Ignore this e-mail; to use Lufy with this address, ask for a sign-in "
        "link instead, which removes that password.",
    ),
    "magic_link": _Copy(
        subject="Your Lufy sign-in link",
        intro="Here is the link you asked for to sign in to Lufy.",
        action="Sign in to Lufy",
        path="/magic-link",
        validity="The link works once and expires in 10 minutes.",
        outro="If you did not ask to sign in, you can ignore this e-mail: nobody can use it "
        "without access to your mailbox.",
    ),
    "password_reset": _Copy(
        subject="Reset your Lufy password",
        intro="Someone (hopefully you) asked to reset the password of your Lufy account.",
        action="Choose a new password",
        path="/reset-password",
        validity="The link works once and expires in 1 hour. Setting a new password signs "
        "you out on every device.",
        outro="If you did not ask for this, you can ignore this e-mail: your password stays "
        "as it is.",
    ),
}


def render(payload: EmailPayload, *, app_url: str, token: str | None) -> EmailMessage:
    name = payload.display_name
    if payload.template == "password_changed":
        which = "every session was" if payload.via == "reset" else "your other sessions were"
        text = (
            f"Hello {name},\n\nThe password of your Lufy account was just changed, and "
            f"{which} signed out.\n\nIf this was not you, reset your password now at "
            f"{app_url}/forgot-password and contact us.\n"
        )
        body = (
            f"<p>Hello {html.escape(name)},</p><p>The password of your Lufy account was just "
            f"changed, and {which} signed out.</p><p>If this was not you, "
            f'<a href="{html.escape(app_url)}/forgot-password">reset your password now</a> '
            "and contact us.</p>"
        )
        return EmailMessage(
            to=payload.to, subject="Your Lufy password was changed", text=text, html=body
        )
    if token is None:
        raise EmailDeliveryError(f"{payload.template} e-mail needs a token", permanent=True)
    copy = _COPY[payload.template]
    link = f"{app_url}{copy.path}?{urlencode({'token': token})}"
    text = (
        f"Hello {name},\n\n{copy.intro}\n\n{copy.action}: {link}\n\n{copy.validity}\n\n"
        f"{copy.outro}\n\n— Lufy\n"
    )
    body = (
        f'<!doctype html><html><body style="font-family: sans-serif; line-height: 1.5">'
        f"<p>Hello {html.escape(name)},</p><p>{html.escape(copy.intro)}</p>"
        f'<p><a href="{html.escape(link)}" style="display: inline-block; padding: 10px 16px; '
        f'background: #111; color: #fff; text-decoration: none; border-radius: 6px">'
        f"{html.escape(copy.action)}</a></p>"
        f"<p>Or paste this link into your browser:<br>{html.escape(link)}</p>"
        f"<p>{html.escape(copy.validity)}</p><p>{html.escape(copy.outro)}</p>"
        "<p>— Lufy</p></body></html>"
    )
    return EmailMessage(to=payload.to, subject=copy.subject, text=text, html=body)


def deliver(
    payload: dict[str, Any],
    *,
    key: str,
    settings: Settings,
    backend: EmailBackend | None = None,
) -> EmailMessage | None:
    """Render an account e-mail from a job payload and hand it to the backend, once per key.

    The address and the name arrive sealed with the person's data key (privacy) and are opened
    here; when the person has been erased since, nothing is sent (None)."""
    if any(sealing.is_sealed(v) for v in payload.values()):
        sealing.configure(settings.DATA_KEY_SECRET, settings.DATA_KEY_PREVIOUS_SECRETS)
        payload = sealing.open_values_sync(settings.DATABASE_URL, payload)
        if sealing.ERASED in (payload.get("to"), payload.get("display_name")):
            return None
    try:
        decoded = msgspec.convert(payload, EmailPayload)
    except msgspec.ValidationError as exc:
        raise EmailDeliveryError(f"bad e-mail payload: {exc}", permanent=True) from None
    token: str | None = None
    if decoded.sealed_token is not None:
        token = TokenSealer(settings.jwt_secret).unseal(
            decoded.sealed_token, purpose=decoded.template
        )
        if token is None:
            raise EmailDeliveryError(
                "cannot open the e-mailed token: JWT_SECRET differs between the API and the "
                "worker (set the same JWT_SECRET for every process)",
                permanent=True,
            )
    message = render(decoded, app_url=settings.frontend_url, token=token)
    chosen = backend or build_backend(settings)
    try:
        chosen.send(message, key=key)
    finally:
        close = getattr(chosen, "close", None)
        if backend is None and callable(close):
            close()  # a backend built here (Resend's HTTP client) dies here
    return message
