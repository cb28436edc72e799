"""What a request is counted by: its body's e-mail (peeked, then replayed), its IP, its user."""

from __future__ import annotations

import hashlib
import ipaddress
from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

import msgspec
from litestar.types import Receive, ReceiveMessage

from lufy.web.auth import Principal
from lufy.web.ratelimit.policies import Policy

__all__ = ["email_of", "keyed_policies", "peek_body"]


class _EmailField(msgspec.Struct):
    email: Any = None


_EMAIL_DECODER = msgspec.json.Decoder(_EmailField)


def email_of(body: bytes) -> str | None:
    """The normalised `email` of a JSON object body, or None (the handler rejects such bodies).

    A body nested thousands deep makes the decoder give up with RecursionError: no address
    then, so the request is counted by its per-IP policies and the handler answers 400.
    """
    try:
        value = _EMAIL_DECODER.decode(body).email
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    if not isinstance(value, str):
        return None
    normalised = value.strip().lower()
    return normalised or None


def _hashed(text: str) -> str:
    # E-mail addresses never appear in Redis keys.
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _ip_subject(ip: str) -> str:
    # An IPv6 client usually holds a whole /64; counting single addresses would let it rotate.
    if ":" not in ip:
        return ip
    try:
        address = ipaddress.IPv6Address(ip)
    except ValueError:
        return ip
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def keyed_policies(
    policies: Iterable[Policy], principal: Principal | None, ip: str, email: str | None
) -> list[tuple[Policy, str]]:
    keyed: list[tuple[Policy, str]] = []
    for policy in policies:
        if policy.key == "email":
            if email is not None:
                keyed.append((policy, _hashed(email)))
        elif policy.key == "caller" and principal is not None:
            keyed.append((policy, principal.user_id.hex))
        else:
            keyed.append((policy, _ip_subject(ip)))
    return keyed


class _Peeked(NamedTuple):
    body: bytes | None  # the whole body, or None when too large or the client went away
    too_large: bool
    replay: Receive


async def peek_body(receive: Receive, limit: int) -> _Peeked:
    """Read the body up to `limit` bytes, and a `receive` that replays it to the handler."""
    messages: deque[ReceiveMessage] = deque()
    chunks: list[bytes] = []
    size = 0
    body: bytes | None = None
    too_large = False
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break  # a disconnect: the handler will see it too
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            too_large = True
            break
        chunks.append(chunk)
        if not message.get("more_body", False):
            body = b"".join(chunks)
            break

    async def replay() -> ReceiveMessage:
        if messages:
            return messages.popleft()
        return await receive()

    return _Peeked(body, too_large, replay)
