"""Attacks on the credential routes' rate limits: a body nested thousands deep (once a 500 that
the limiter never counted), and probing sign-up for registered addresses from many IPs."""

from __future__ import annotations

import pytest

from lufy.bootstrap import Container
from tests.helpers.http import api_client

_DEEP = b"[" * 8000 + b"]" * 8000
_NESTED_BODIES = {
    "as the e-mail": b'{"email": ' + _DEEP + b', "password": "x"}',
    "in an unknown field": b'{"email": "v@example.com", "password": "x", "pad": ' + _DEEP + b"}",
    "as the whole body": _DEEP,
    # 2,500 deep: objects take more bytes per level, and the body must stay under the 16 KiB
    # the limiter reads (a bigger one is refused with 413 before anything else).
    "as objects": b'{"a":' * 2500 + b"1" + b"}" * 2500,
}


@pytest.mark.parametrize("where", list(_NESTED_BODIES))
async def test_a_sign_in_body_nested_eight_thousand_deep_is_a_counted_400(
    container: Container, where: str
) -> None:
    body = _NESTED_BODIES[where]
    assert len(body) <= 16 * 1024
    async with api_client(container, client_ip="198.51.100.7") as client:
        responses = [
            await client.post(
                "/api/auth/sign-in", content=body, headers={"content-type": "application/json"}
            )
            for _ in range(2)
        ]
    for response in responses:
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]
    # Counted: the second attempt has one request fewer left under the per-IP sign-in policy.
    remaining = [_remaining(r.headers["RateLimit"], "sign-in-ip") for r in responses]
    assert remaining == [19, 18]


@pytest.mark.parametrize("route", ["sign-up", "refresh", "magic-link/verify", "password/reset"])
async def test_other_auth_bodies_nested_eight_thousand_deep_are_a_400_not_a_500(
    container: Container, route: str
) -> None:
    body = b'{"token": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    async with api_client(container, client_ip="198.51.100.8") as client:
        response = await client.post(
            f"/api/auth/{route}", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400, response.text
    assert response.json()["title"] == "Malformed request body"


async def test_probing_sign_up_for_one_address_from_many_ips_is_limited_per_address(
    container: Container,
) -> None:
    body = {"email": "Known@Example.com", "password": "a long passphrase", "display_name": "K"}
    answers = []
    for n in range(6):
        async with api_client(container, client_ip=f"198.51.100.{20 + n}") as client:
            answers.append(await client.post("/api/auth/sign-up", json=body))

    assert [a.status_code for a in answers] == [201, 409, 409, 409, 409, 429]
    # The conflict says what the contract says, and nothing about the account.
    conflict = answers[1].json()
    assert conflict == {
        "type": "about:blank",
        "status": 409,
        "title": "E-mail address already registered",
        "detail": "an account with the address known@example.com already exists",
    }
    assert answers[5].json()["policy"] == "sign-up-email"
    assert int(answers[5].headers["Retry-After"]) > 0


async def test_signing_up_many_addresses_from_one_ip_is_limited_per_ip(
    container: Container,
) -> None:
    statuses = []
    async with api_client(container, client_ip="198.51.100.40") as client:
        for n in range(11):
            response = await client.post(
                "/api/auth/sign-up",
                json={
                    "email": f"new{n}@example.com",
                    "password": "a long passphrase",
                    "display_name": "N",
                },
            )
            statuses.append((response.status_code, response.json().get("policy")))
    assert statuses[:10] == [(201, None)] * 10
    assert statuses[10] == (429, "sign-up-ip")


def _remaining(header: str, policy: str) -> int:
    for item in header.split(","):
        name, *params = item.strip().split(";")
        if name.strip('"') == policy:
            return int(next(p for p in params if p.startswith("r="))[2:])
    raise AssertionError(f"{policy} not in {header!r}")
