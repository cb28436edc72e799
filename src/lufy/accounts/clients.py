"""Who is on the other end of a session: a device label from the User-Agent and the client's
network prefix (never its full address)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import msgspec

__all__ = ["ClientInfo", "device_label", "ip_prefix"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientInfo(msgspec.Struct, frozen=True, kw_only=True):
    user_agent: str | None = None
    ip: str | None = None

    @property
    def device(self) -> str:
        return device_label(self.user_agent)

    @property
    def ip_prefix(self) -> str | None:
        return ip_prefix(self.ip)


@lru_cache(maxsize=1024)
def device_label(user_agent: str | None) -> str:
    """ "Firefox 128 on Linux", "curl 8", or "unknown device"."""
    if not user_agent:
        return "unknown device"
    from ua_parser import parse  # loads its regexes on first use: keep it off the import path

    result = parse(user_agent[:512])
    parts: list[str] = []
    if result.user_agent is not None and result.user_agent.family != "Other":
        agent = result.user_agent
        parts.append(f"{agent.family} {agent.major}" if agent.major else agent.family)
    if result.os is not None and result.os.family != "Other":
        parts.append(("on " if parts else "") + result.os.family)
    return " ".join(parts)[:100] or "unknown device"


def ip_prefix(ip: str | None) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network an address is in, as CIDR text."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))
