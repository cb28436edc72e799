"""The client's IP address: the socket peer, or what trusted proxies say it is.

`X-Forwarded-For` is a list each proxy appends the address it received the connection from to.
Only the entries added by proxies we run can be believed, so the list is read from the right:
while the hop that handed us the request is one of `TRUSTED_PROXIES`, step one entry left. The
first hop that is not a trusted proxy is the client. A header sent by anyone else is ignored
whole: a client can write anything it likes into it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from litestar.types import Scope

from lufy.settings import Settings

__all__ = ["TrustedProxies", "client_ip", "client_ip_for", "parse_ip", "proxy_header"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_STATE_KEY = "client_ip"
_UNKNOWN = "unknown"


def parse_ip(text: str) -> IPAddress | None:
    """An address from a header entry or socket peer: `1.2.3.4`, `1.2.3.4:567`, `[::1]:80`, `::1`.

    IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, what a dual-stack socket reports for an IPv4
    peer) become the IPv4 address, so one client has one spelling.
    """
    # No address is longer than this (an IPv6 one in brackets with a port); anything longer
    # is not one, and is not kept in the cache either.
    if len(text) > 64:
        return None
    return _parse_ip(text)


@functools.lru_cache(maxsize=16384)  # every request parses its peer: most are repeat callers
def _parse_ip(text: str) -> IPAddress | None:
    text = text.strip().strip('"')
    if not text:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has at least two colons
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The configured proxy networks, parsed once."""

    __slots__ = ("_networks",)

    def __init__(self, networks: Iterable[IPNetwork] = ()) -> None:
        self._networks: tuple[IPNetwork, ...] = tuple(networks)

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustedProxies:
        return cls(settings.trusted_proxies)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return any(address.version == net.version and address in net for net in self._networks)


def _forwarded_for(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    # Several X-Forwarded-For fields are one list, in order (RFC 9110 section 5.3).
    entries: list[str] = []
    for name, value in headers:
        if name == b"x-forwarded-for":
            entries.extend(value.decode("latin-1").split(","))
    return entries


def client_ip(
    peer: str | None,
    headers: Iterable[tuple[bytes, bytes]],
    trusted: TrustedProxies,
) -> str:
    """The client address for a connection from `peer` carrying `headers` (ASGI raw headers).

    Returns the address as text; a peer that is not an IP address (a unix socket, a test
    client's placeholder) is returned as given, and a missing one as "unknown".
    """
    if not peer:
        return _UNKNOWN
    hop = parse_ip(peer)
    if hop is None:
        return peer
    if not trusted or hop not in trusted:
        return _text_of(hop)
    for entry in reversed(_forwarded_for(headers)):
        candidate = parse_ip(entry)
        if candidate is None:
            # A malformed entry was written by someone we do not trust: the trusted proxy to
            # its right is the last hop we know anything about.
            return str(hop)
        hop = candidate
        if hop not in trusted:
            return str(hop)
    # Every hop is one of ours (or there was no header): the leftmost is as far as we can see.
    return str(hop)


@functools.lru_cache(maxsize=16384)
def _text_of(address: IPAddress) -> str:
    return str(address)


def client_ip_for(scope: Scope, trusted: TrustedProxies | None = None) -> str:
    """The client address of an ASGI request, computed once and kept in `scope["state"]`.

    Without `trusted`, the proxies configured in the app's settings are used (the container on
    `app.state`), so handlers and other middleware get the same answer the rate limiter uses.
    """
    state: dict[str, Any] = scope.setdefault("state", {})
    cached = state.get(_STATE_KEY)
    if isinstance(cached, str):
        return cached
    if trusted is None:
        trusted = _trusted_of_app(scope)
    client: Sequence[Any] | None = scope.get("client")
    peer = str(client[0]) if client else None
    address = client_ip(peer, scope.get("headers", ()), trusted)
    state[_STATE_KEY] = address
    return address


def _trusted_of_app(scope: Scope) -> TrustedProxies:
    app = scope.get("app")
    container = getattr(getattr(app, "state", None), "container", None)
    settings = getattr(container, "settings", None)
    if not isinstance(settings, Settings):
        return TrustedProxies()
    return TrustedProxies.from_settings(settings)


def proxy_header(scope: Scope, name: str, trusted: TrustedProxies | None = None) -> str | None:
    """A header only our proxies or CDN may set (`CloudFront-Viewer-Country`): its value when
    the connection comes from one of `TRUSTED_PROXIES`, else None, whatever the client sent."""
    if trusted is None:
        trusted = _trusted_of_app(scope)
    client: Sequence[Any] | None = scope.get("client")
    peer = parse_ip(str(client[0])) if client else None
    if not trusted or peer not in trusted:
        return None
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key == wanted:
            return str(value.decode("latin-1"))
    return None
