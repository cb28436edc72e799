"""The web app at `/`: the built single-page app (frontend/, built with Vite) served by Lufy.

The built files ship inside the package (`lufy/_data/web`, see pyproject.toml), so an installed
`lufy` serves them without Node; in a source checkout `frontend/dist` is used. Files under
`assets/` carry a content hash in their name and are cached for a year; `index.html`, the service
worker and the manifest are revalidated on every load, so a deploy is seen at once. Any other
GET that names no file and no server path is a client route and answers `index.html`.
Precompressed siblings (`.br`, `.gz`, written by the build) are sent when the client accepts them.
"""

from __future__ import annotations

import mimetypes
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from lufy.errors import NotFoundError

__all__ = ["ROUTES", "find_dist"]

# Paths the app never claims: the API, media, docs, health and metrics keep their own answers.
_SERVER_PREFIXES = ("api", "media", "schema", "swagger", "healthz", "readyz", "metrics")
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".woff2": "font/woff2",
}
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


def find_dist() -> Path | None:
    """Where the built app is: the packaged copy, else a source checkout's `frontend/dist`."""
    packaged = Path(str(resources.files("lufy") / "_data" / "web"))
    if (packaged / "index.html").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "frontend" / "dist"
    if (checkout / "index.html").is_file():
        return checkout
    return None


@lru_cache(maxsize=1)
def _dist() -> Path | None:
    return find_dist()


def _resolve(dist: Path, rest: str) -> Path | None:
    parts = PurePosixPath(rest).parts
    if any(part in ("..", ".") or part.startswith(".") for part in parts):
        return None
    candidate = dist.joinpath(*parts) if parts else dist / "index.html"
    return candidate if candidate.is_file() else None


def _file_response(request: Request[Any, Any, Any], path: Path, rest: str) -> Response[bytes]:
    accepted = request.headers.get("accept-encoding", "")
    guessed = mimetypes.guess_type(path.name)[0]
    media_type = _TYPES.get(path.suffix) or guessed or "application/octet-stream"
    headers = {
        "Cache-Control": _IMMUTABLE if rest.startswith("assets/") else _REVALIDATE,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if path.name == "sw.js":
        headers["Service-Worker-Allowed"] = "/"
    body_path = path
    for encoding, extension in _ENCODINGS:
        compressed = path.with_name(path.name + extension)
        if encoding in accepted and compressed.is_file():
            body_path = compressed
            headers["Content-Encoding"] = encoding
            break
    return Response(body_path.read_bytes(), media_type=media_type, headers=headers)


@get(["/", "/{rest:path}"], include_in_schema=False, sync_to_thread=False)
def web_app(request: Request[Any, Any, Any], rest: FromPath[str] = "") -> Response[bytes]:
    rest = rest.lstrip("/")
    first = rest.split("/", 1)[0]
    if first in _SERVER_PREFIXES:
        raise NotFoundError(f"nothing at /{rest}")
    dist = _dist()
    if dist is None:
        raise NotFoundError(
            "the web app is not built: run `npm ci && npm run build` in frontend/ "
            "(./scripts/dev does this)"
        )
    found = _resolve(dist, rest)
    if found is not None:
        return _file_response(request, found, rest)
    if "." in PurePosixPath(rest).name:
        # A missing file (an old hashed asset, a typo): a 404, never the app's HTML as script.
        raise NotFoundError(f"no file /{rest}")
    return _file_response(request, dist / "index.html", "index.html")


ROUTES = [web_app]
