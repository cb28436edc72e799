"""Rate limiting in the real app: accounts' bearer tokens, the real sign-in, create_app's stack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from lufy.bootstrap import Container, bootstrap
from lufy.settings import Settings
from lufy.web.app import create_app
from lufy.web.ratelimit.policies import OPT_KEY, Rule
from tests.helpers.accounts import DEFAULT_PASSWORD, create_user
from tests.helpers.http import api_client


async def test_a_signed_in_caller_is_counted_under_the_user_policy(container: Container) -> None:
    user = await create_user(container)

    async with api_client(container) as client:
        session = await client.get("/api/auth/session", headers=user.headers)
        status = await client.get("/api/rate-limit/status", headers=user.headers)
        guest = await client.get("/api/rate-limit/status")

    assert session.status_code == 200
    assert session.headers["RateLimit-Policy"] == '"user";q=100;w=60'
    assert session.headers["RateLimit"] == '"user";r=99;t=60'
    assert status.json() == {"policy": "user", "limit": 100, "remaining": 98, "reset": 60}
    assert guest.json() == {"policy": "guest", "limit": 20, "remaining": 19, "reset": 60}


async def test_a_bad_token_is_counted_as_a_guest_and_still_gets_headers(
    container: Container,
) -> None:
    async with api_client(container) as client:
        response = await client.get(
            "/api/auth/session", headers={"Authorization": "Bearer not.a.token"}
        )

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["RateLimit"] == '"guest";r=19;t=60'


async def test_password_guessing_stops_after_five_tries_per_email_even_from_new_addresses(
    container: Container,
) -> None:
    user = await create_user(container)

    statuses = []
    for n in range(5):
        async with api_client(container, client_ip=f"198.51.100.{n + 1}") as client:
            wrong = await client.post(
                "/api/auth/sign-in", json={"email": user.email, "password": f"wrong guess {n}"}
            )
            statuses.append(wrong.status_code)
    async with api_client(container, client_ip="203.0.113.50") as client:
        right = await client.post(
            "/api/auth/sign-in", json={"email": user.email, "password": DEFAULT_PASSWORD}
        )

    assert statuses == [401] * 5
    assert right.status_code == 429
    assert right.json()["policy"] == "sign-in-email"
    assert int(right.headers["Retry-After"]) > 0


async def test_the_sign_in_body_reaches_the_handler_intact(container: Container) -> None:
    user = await create_user(container)

    async with api_client(container) as client:
        response = await client.post(
            "/api/auth/sign-in",
            content=msgspec.json.encode({"email": user.email, "password": DEFAULT_PASSWORD}),
            headers={"content-type": "application/json"},
        )

    assert response.status_code == 200
    assert response.json()["user"]["email"] == user.email
    assert "sign-in-email" in response.headers["RateLimit-Policy"]


@pytest.fixture
async def redis_down(settings: Settings) -> AsyncIterator[Container]:
    broken = settings.model_copy(update={"REDIS_URL": "redis://127.0.0.1:1/0"})
    container = bootstrap(broken)
    await container.start()
    yield container
    await container.stop()


async def test_with_redis_down_sign_in_answers_503_and_reading_the_session_still_works(
    container: Container, redis_down: Container
) -> None:
    user = await create_user(container)  # the same database; only Redis is unreachable

    async with api_client(redis_down) as client:
        session = await client.get("/api/auth/session", headers=user.headers)
        sign_in = await client.post(
            "/api/auth/sign-in", json={"email": user.email, "password": DEFAULT_PASSWORD}
        )
        sign_up = await client.post(
            "/api/auth/sign-up",
            json={
                "email": "new@example.com",
                "password": "a long enough password",
                "display_name": "New",
                "role": "listener",
            },
        )

    assert session.status_code == 200
    assert session.headers["RateLimit-Policy"] == '"user";q=100;w=60'
    assert sign_in.status_code == 503
    assert sign_in.headers["content-type"] == "application/problem+json"
    assert "Retry-After" in sign_in.headers
    assert sign_up.status_code == 503


async def test_password_reset_mail_is_limited_per_email(container: Container) -> None:
    user = await create_user(container)

    statuses = []
    for n in range(4):
        async with api_client(container, client_ip=f"198.51.100.{n + 1}") as client:
            response = await client.post("/api/auth/password/forgot", json={"email": user.email})
            statuses.append(response.status_code)

    assert statuses == [202, 202, 202, 429]


async def test_the_status_route_is_in_the_openapi_document(container: Container) -> None:
    async with api_client(container) as client:
        document = (await client.get("/schema/openapi.json")).json()

    operation = document["paths"]["/api/rate-limit/status"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("RateLimitStatus")


def test_the_app_declares_the_documented_rules_on_its_routes(container: Container) -> None:
    declared: dict[str, tuple[str, ...]] = {}
    for route in create_app(container).routes:
        for handler in getattr(route, "route_handlers", ()):
            rule = handler.opt.get(OPT_KEY)
            if isinstance(rule, Rule):
                for method in sorted(handler.http_methods):
                    declared[f"{method} {route.path}"] = tuple(p.name for p in rule.policies)

    assert declared == {
        "POST /api/auth/sign-in": ("sign-in-ip", "sign-in-email"),
        "POST /api/auth/sign-up": ("sign-up-ip", "sign-up-email"),
        "POST /api/auth/password/forgot": ("password-forgot-ip", "password-forgot-email"),
        "POST /api/auth/password/reset": ("password-reset-ip",),
        "POST /api/auth/magic-link": ("magic-link-ip", "magic-link-email"),
        "POST /api/auth/magic-link/verify": ("magic-link-verify-ip",),
        "POST /api/auth/verify-email": ("verify-email-ip",),
        "POST /api/auth/verify-email/resend": ("verify-email-resend-ip",),
        "POST /api/auth/password/change": ("password-change-ip",),
        "POST /api/auth/refresh": ("refresh-ip",),
        "DELETE /api/auth/account": ("account-delete-ip",),
        "POST /api/analytics/events": ("ingest", "ingest-bytes"),
        "POST /api/payments/webhook": ("stripe-webhook",),
    }
