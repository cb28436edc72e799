"""The web app at `/` (lufy serve), CORS for browser clients on other origins, and FRONTEND_URL
in e-mail links."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from lufy.accounts.emails import deliver
from lufy.accounts.secrets import TokenSealer
from lufy.bootstrap import bootstrap
from lufy.email import MemoryBackend
from lufy.settings import SettingsError, load_settings
from lufy.web import frontend
from lufy.web.app import create_app

SECRET = "s" * 40
SCRIPT = "console.log('lufy');\n" * 100


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><div id=root></div>")
    (root / "sw.js").write_text("self.addEventListener('fetch', () => {});")
    (root / "manifest.webmanifest").write_text('{"name": "Lufy"}')
    (root / "assets" / "index-abc123.js").write_text(SCRIPT)
    (root / "assets" / "index-abc123.js.gz").write_bytes(gzip.compress(SCRIPT.encode()))
    monkeypatch.setattr(frontend, "_dist", lambda: root)
    return root


def _client(**settings: str) -> Iterator[TestClient[Any]]:
    app = create_app(bootstrap(load_settings(LUFY_ENV="test", JWT_SECRET=SECRET, **settings)))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(dist: Path) -> Iterator[TestClient[Any]]:
    yield from _client()


def test_the_app_is_served_at_the_root_and_for_client_routes(client: TestClient[Any]) -> None:
    for path in ("/", "/tracks", "/verify-email?token=abc", "/account/sessions"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert "id=root" in response.text
        assert response.headers["cache-control"] == "no-cache"


def test_hashed_assets_are_cached_for_a_year_and_sent_precompressed(
    client: TestClient[Any],
) -> None:
    response = client.get("/assets/index-abc123.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.text == SCRIPT  # decoded by the client
    plain = client.get("/assets/index-abc123.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.text == SCRIPT


def test_the_service_worker_and_manifest_are_revalidated_on_every_load(
    client: TestClient[Any],
) -> None:
    worker = client.get("/sw.js")
    assert worker.headers["cache-control"] == "no-cache"
    assert worker.headers["service-worker-allowed"] == "/"
    manifest = client.get("/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")


def test_a_missing_file_is_a_404_problem_never_the_app_html(client: TestClient[Any]) -> None:
    for path in ("/assets/index-old999.js", "/favicon.ico", "/../pyproject.toml", "/.env"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")


def test_server_paths_keep_their_own_answers(client: TestClient[Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    api = client.get("/api/no-such-route")
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")
    assert client.get("/media/nothing").status_code == 404
    assert client.get("/schema/openapi.json").status_code == 200


def test_without_a_build_the_root_says_how_to_build_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(frontend, "_dist", lambda: None)
    for client in _client():
        response = client.get("/")
        assert response.status_code == 404
        assert "npm run build" in response.json()["detail"]


def test_cors_allows_configured_origins_and_exposes_the_rate_limit_headers(dist: Path) -> None:
    for client in _client(CORS_ALLOWED_ORIGINS="https://app.example, http://localhost:5173"):
        preflight = client.options(
            "/api/auth/sign-in",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        simple = client.get("/healthz", headers={"Origin": "http://localhost:5173"})
        assert simple.headers["access-control-allow-origin"] == "http://localhost:5173"
        exposed = {
            h.strip().lower() for h in simple.headers["access-control-expose-headers"].split(",")
        }
        assert {"ratelimit", "ratelimit-policy", "retry-after", "x-request-id"} <= exposed
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_without_cors_origins_no_cross_origin_headers_are_sent(client: TestClient[Any]) -> None:
    response = client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CORS_ALLOWED_ORIGINS", "app.example"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example/path"),
        ("FRONTEND_URL", "app.example"),
    ],
)
def test_a_malformed_browser_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(**{name: value})


def test_email_links_point_at_frontend_url_and_default_to_app_url(tmp_path: Path) -> None:
    sealed = TokenSealer(SECRET).seal("tok", purpose="verify_email")
    payload = {"template": "verify_email", "to": "a@example.com", "display_name": "A"}
    payload["sealed_token"] = sealed
    fake = MemoryBackend()
    split = load_settings(
        JWT_SECRET=SECRET, APP_URL="https://api.example", FRONTEND_URL="https://app.example/"
    )
    deliver(payload, key="k1", settings=split, backend=fake)
    assert "https://app.example/verify-email?token=tok" in fake.sent["k1"].text
    same = load_settings(JWT_SECRET=SECRET, APP_URL="https://lufy.example")
    deliver(payload, key="k2", settings=same, backend=fake)
    assert "https://lufy.example/verify-email?token=tok" in fake.sent["k2"].text
