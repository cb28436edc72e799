"""Who is listening, from where, on what: listener keys, sampling, bots, device classes.

Pure functions of their inputs, so ingestion, the importer and the tests' oracle agree.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from functools import lru_cache

from ua_parser import parse as parse_user_agent

__all__ = [
    "country_code",
    "device_class",
    "is_bot",
    "is_sampled_in",
    "listener_identity",
    "listener_key",
]

_COUNTRY = re.compile(r"^[A-Z]{2}$")
# ua-parser flags crawlers as the device family "Spider"; these catch headless browsers and
# monitors it leaves alone. Generic HTTP libraries (curl, python-httpx, okhttp) are not bots:
# server-side senders use them, and dropping their events would lose data silently.
_BOT_WORDS = re.compile(
    r"bot\b|bot/|crawler|spider|slurp|headlesschrome|phantomjs|lighthouse|pingdom|"
    r"uptimerobot|statuscake|site24x7|facebookexternalhit|embedly|quora link preview",
    re.IGNORECASE,
)
_TV_WORDS = re.compile(r"smart-?tv|hbbtv|appletv|googletv|roku|tizen|webos|bravia|crkey", re.I)
_DESKTOP_OS = {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD"}


def listener_identity(user_id: uuid.UUID | None, anonymous_id: str | None) -> str | None:
    """The listener: the signed-in user, else the anonymous id (CONTRACT.md section 3)."""
    if user_id is not None:
        return f"u:{user_id}"
    if anonymous_id:
        return f"a:{anonymous_id}"
    return None


@lru_cache(maxsize=65_536)
def listener_key(secret: bytes, identity: str) -> str:
    """A keyed hash: stable per listener, useless without the database's secret."""
    return hmac.new(secret, identity.encode(), hashlib.sha256).hexdigest()[:32]


def is_sampled_in(identity: str, rate: float) -> bool:
    """Whether this listener's events are kept: a fixed point in [0, 1) per listener, compared
    with the rate, so a listener is always in or always out and raising the rate only adds
    listeners (CONTRACT.md section 4)."""
    if rate >= 1.0:
        return True
    digest = hashlib.sha256(b"lufy-sample:" + identity.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@lru_cache(maxsize=1024)
def country_code(header: str | None) -> str | None:
    """ISO 3166 alpha-2 from CloudFront-Viewer-Country (or an import file), else None."""
    if not header:
        return None
    code = header.strip().upper()
    return code if _COUNTRY.match(code) else None


@lru_cache(maxsize=4096)
def is_bot(user_agent: str | None) -> bool:
    if not user_agent:
        return False
    if _BOT_WORDS.search(user_agent):
        return True
    device = parse_user_agent(user_agent).device
    return device is not None and device.family == "Spider"


@lru_cache(maxsize=4096)
def device_class(user_agent: str | None) -> str | None:
    """desktop | mobile | tablet | tv | None (unknown), from the User-Agent."""
    if not user_agent:
        return None
    if _TV_WORDS.search(user_agent):
        return "tv"
    parsed = parse_user_agent(user_agent)
    device = parsed.device.family if parsed.device else ""
    brand = (parsed.device.brand or "") if parsed.device else ""
    os_family = parsed.os.family if parsed.os else ""
    if device == "iPad" or "tablet" in device.lower() or "tablet" in brand.lower():
        return "tablet"
    if os_family == "Android":
        return "mobile" if "Mobile" in user_agent else "tablet"
    if os_family in {"iOS", "Windows Phone", "BlackBerry OS", "KaiOS"} or "Mobile" in user_agent:
        return "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return None
