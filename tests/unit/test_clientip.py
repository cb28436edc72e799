from __future__ import annotations

import ipaddress

from lufy.web.clientip import TrustedProxies, client_ip, client_ip_for, parse_ip

PROXIES = TrustedProxies([ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")])


def xff(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", v.encode()) for v in values]


def test_without_trusted_proxies_the_socket_peer_is_the_client() -> None:
    assert client_ip("198.51.100.4", xff("203.0.113.9"), TrustedProxies()) == "198.51.100.4"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert client_ip("198.51.100.4", xff("203.0.113.9"), PROXIES) == "198.51.100.4"


def test_a_trusted_proxy_names_the_client() -> None:
    assert client_ip("10.1.2.3", xff("203.0.113.9"), PROXIES) == "203.0.113.9"


def test_the_list_is_walked_from_the_right_past_every_trusted_hop() -> None:
    # The client wrote "1.1.1.1" itself; our two proxies appended what they saw.
    headers = xff("1.1.1.1, 203.0.113.9, 10.0.0.7")
    assert client_ip("10.1.2.3", headers, PROXIES) == "203.0.113.9"


def test_several_forwarded_for_fields_form_one_list() -> None:
    headers = xff("1.1.1.1, 203.0.113.9", "10.0.0.7")
    assert client_ip("10.1.2.3", headers, PROXIES) == "203.0.113.9"


def test_a_malformed_entry_stops_the_walk_at_the_last_trusted_hop() -> None:
    headers = xff("203.0.113.9, not-an-ip, 10.0.0.7")
    assert client_ip("10.1.2.3", headers, PROXIES) == "10.0.0.7"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert client_ip("10.1.2.3", xff("10.9.9.9, 10.0.0.7"), PROXIES) == "10.9.9.9"


def test_a_trusted_proxy_without_the_header_is_itself_the_client() -> None:
    assert client_ip("10.1.2.3", [], PROXIES) == "10.1.2.3"


def test_ipv6_hops_with_ports_and_brackets_are_understood() -> None:
    headers = xff('"[2001:db8::7]:4711", [fd00::1]')
    assert client_ip("fd00::2", headers, PROXIES) == "2001:db8::7"


def test_ipv4_mapped_ipv6_peers_are_spelled_as_ipv4() -> None:
    assert client_ip("::ffff:10.1.2.3", xff("203.0.113.9"), PROXIES) == "203.0.113.9"
    assert parse_ip("::ffff:198.51.100.4") == ipaddress.ip_address("198.51.100.4")


def test_entries_with_ports_parse_and_garbage_does_not() -> None:
    assert parse_ip("203.0.113.9:8080") == ipaddress.ip_address("203.0.113.9")
    assert parse_ip("unknown") is None
    assert parse_ip("") is None
    assert parse_ip("[::1") is None


def test_a_peer_that_is_not_an_address_is_kept_as_given() -> None:
    assert client_ip("testclient", xff("203.0.113.9"), PROXIES) == "testclient"
    assert client_ip(None, [], PROXIES) == "unknown"


def test_the_scope_helper_computes_once_and_caches_in_the_state() -> None:
    scope = {
        "type": "http",
        "client": ("10.1.2.3", 5000),
        "headers": xff("203.0.113.9"),
    }
    assert client_ip_for(scope, PROXIES) == "203.0.113.9"  # type: ignore[arg-type]
    assert scope["state"] == {"client_ip": "203.0.113.9"}
    # Cached: a later caller with other proxies gets the same answer for this request.
    assert client_ip_for(scope, TrustedProxies()) == "203.0.113.9"  # type: ignore[arg-type]
