"""Password policy and argon2id hashing; device labels and IP prefixes."""

from __future__ import annotations

import pytest

from lufy.accounts.clients import device_label, ip_prefix
from lufy.accounts.errors import WeakPasswordError
from lufy.accounts.passwords import PasswordHashing, check_password_policy, common_passwords


def test_the_shipped_common_list_is_loaded_from_package_data() -> None:
    words = common_passwords()
    assert len(words) > 5000
    assert {"123456", "password", "qwerty123", "iloveyou"} <= words


@pytest.mark.parametrize(
    "password", ["1234567", "password", "Password1", "QWERTY123", "aaaaaaaaaa", "abababababab"]
)
def test_short_common_and_trivial_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPasswordError):
        check_password_policy(password)


def test_the_length_limits_are_8_and_128() -> None:
    check_password_policy("abcdefg8"[:7] + "Z")
    check_password_policy("q" + "w7" * 63 + "e")  # 128 characters
    with pytest.raises(WeakPasswordError, match="at most 128"):
        check_password_policy("q" + "w7" * 64)


def test_hashes_are_argon2id_salted_and_verify_only_the_right_password() -> None:
    hashing = PasswordHashing(cheap=True)
    first, second = hashing.hash("correct horse"), hashing.hash("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second
    assert hashing.verify(first, "correct horse")
    assert not hashing.verify(first, "wrong horse")
    assert not hashing.verify(None, "lufy-dummy-password-for-timing")
    assert not hashing.verify("not a hash", "correct horse")


def test_the_production_hasher_uses_the_rfc_9106_parameters() -> None:
    assert "$m=65536,t=3,p=4$" in PasswordHashing().hash("x" * 10)


@pytest.mark.parametrize(
    ("ua", "label"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox 128 on Linux",
        ),
        ("curl/8.4.0", "curl 8"),
        (None, "unknown device"),
        ("", "unknown device"),
        ("\x00" * 2000, "unknown device"),
    ],
)
def test_devices_are_labelled_from_the_user_agent(ua: str | None, label: str) -> None:
    assert device_label(ua) == label


@pytest.mark.parametrize(
    ("ip", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("not an ip", None),
        (None, None),
    ],
)
def test_only_the_network_prefix_of_an_address_is_kept(ip: str | None, prefix: str | None) -> None:
    assert ip_prefix(ip) == prefix
