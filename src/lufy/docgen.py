"""Generated reference docs: `docs/configuration.md` (from `Settings`), `docs/api.md` (from the
app's OpenAPI document) and `docs/cli.md` (from the click commands). `python -m lufy.docgen`
writes them; `--check` (run by scripts/test) exits 1 when one differs from what the code
implies.

Descriptions of settings live here, one per variable: a new setting without one is reported
by `--check`, so the table cannot silently fall behind `Settings`.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import click
from pydantic_core import PydanticUndefined

from lufy.bootstrap import bootstrap
from lufy.cli import cli
from lufy.settings import Settings, load_settings
from lufy.web.app import create_app

__all__ = ["DESCRIPTIONS", "main", "render_api", "render_cli", "render_configuration"]

# Variable -> (meaning, default as a person reads it, or None to print the code's default).
DESCRIPTIONS: dict[str, tuple[str, str | None]] = {
    "DATABASE_URL": (
        "PostgreSQL URL of the API, projector and workers: the non-owner app role `lufy_app` "
        "(production refuses the default password)",
        None,
    ),
    "DATABASE_ADMIN_URL": (
        "URL of the owner role, used only by `lufy migrate`",
        "`postgresql://$USER@127.0.0.1:5432/lufy` (the current OS user)",
    ),
    "REDIS_URL": ("Redis for dramatiq, rate limits and short-lived caches", None),
    "ANALYTICS_SAMPLE_RATE": (
        "share of listeners whose analytics events are kept, in (0, 1]; kept events weigh 1/rate",
        None,
    ),
    "S3_BUCKET_NAME": ("when set, media goes to this S3 bucket (else under `MEDIA_ROOT`)", None),
    "S3_ENDPOINT_URL": ("an S3-compatible endpoint (MinIO, a local S3 server in tests)", None),
    "MEDIA_ROOT": ("local media storage when no bucket is set", None),
    "STRIPE_SECRET_KEY": ("Stripe API key; without it the payment routes answer 503", None),
    "STRIPE_WEBHOOK_SECRET": ("secret that signs Stripe webhooks (`Stripe-Signature`)", None),
    "STRIPE_PRICE_PREMIUM": ("Stripe Price id of the listener Premium subscription", None),
    "STRIPE_API_BASE": ("base URL of the Stripe API (a local fake in tests)", "Stripe's"),
    "PAYMENTS_GRACE_DAYS": ("days a `past_due` subscription keeps premium", None),
    "ROYALTY_ARTIST_SHARE": (
        "share of net subscription revenue paid to artists, in (0, 1]",
        None,
    ),
    "APP_URL": ("public base URL, used in e-mail links and media URLs", None),
    "FRONTEND_URL": ("base URL of the web app, used in e-mail links", "`APP_URL`"),
    "JWT_SECRET": (
        "HS256 key of access and stream tokens, the same for every process; production needs "
        "32+ characters",
        "random per process in dev (with a warning)",
    ),
    "CLOUDFRONT_KEY_PAIR_ID": ("CloudFront key pair id: set all three CLOUDFRONT_* or none", None),
    "CLOUDFRONT_PRIVATE_KEY": ("PEM RSA key that signs CloudFront stream URLs", None),
    "CLOUDFRONT_DOMAIN": ("the CloudFront distribution's domain", None),
    "RESEND_API_KEY": ("e-mail through Resend", None),
    "EMAIL_FROM": ("sender of Lufy's e-mails", None),
    "EMAIL_BACKEND": (
        "`resend`, `file` (one JSON file per message in `EMAIL_FILE_DIR`) or `log`; production "
        "refuses `file` and `log`",
        "`resend` with a Resend key, else `file`",
    ),
    "EMAIL_FILE_DIR": ("where the `file` e-mail backend writes", None),
    "LUFY_ENV": ("`dev`, `test` or `production` (production refuses unsafe defaults)", None),
    "RATE_LIMIT_ENABLED": ("rate limiting on or off", None),
    "RATE_LIMIT_USER": ("default policy for a signed-in user (`N/second|minute|hour|day`)", None),
    "RATE_LIMIT_GUEST": ("default policy for a guest, keyed by client IP", None),
    "TRUSTED_PROXIES": (
        "comma-separated CIDRs whose `X-Forwarded-For` (and CDN headers) are believed",
        None,
    ),
    "CORS_ALLOWED_ORIGINS": (
        "comma-separated origins allowed to call the API from a browser",
        "empty (same origin only)",
    ),
    "DATABASE_READ_URL": (
        "a streaming replica for dashboard reads and exports (`docs/operations.md`, "
        '"Read replicas")',
        "unset (the primary)",
    ),
    "READ_REPLICA_MAX_LAG": (
        "seconds behind after which the replica is bypassed for the primary",
        None,
    ),
    "METRICS_PORT": (
        "serve `/metrics` on this port instead of the API port",
        "unset: `/metrics` on the API port",
    ),
    "METRICS_TOKEN": (
        "bearer token `/metrics` requires (16+ characters); with neither METRICS_* set, only "
        "loopback callers may scrape",
        None,
    ),
    "DATABASE_PREPARED_STATEMENTS": (
        "`false` turns server-side prepared statements off, for a transaction-mode PgBouncer "
        'older than 1.21 in front of the API and workers (`docs/operations.md`, "Connection '
        'pooling")',
        None,
    ),
    "LUFY_ANALYST_PASSWORD": (
        "password of the `lufy_analyst` login role (production refuses the default; unset in "
        "production: NOLOGIN)",
        "`lufy_analyst` in dev",
    ),
    "DATA_KEY_SECRET": (
        "master key that wraps each person's data key (privacy); required in production",
        "random per database in dev",
    ),
    "DATA_KEY_PREVIOUS_SECRETS": (
        "during a rotation of `DATA_KEY_SECRET`: the previous secret(s), comma-separated, whose "
        "data keys still open until `lufy migrate` has wrapped them by the new one",
        "empty",
    ),
    "ANALYTICS_RAW_RETENTION_DAYS": (
        "raw analytics events older than this keep only their aggregates",
        "unset (keep)",
    ),
    "STREAM_PREVIOUS_SECRETS": (
        "during a key rotation: the previous `JWT_SECRET`(s), comma-separated, whose stream "
        "tokens the local edge still accepts",
        "empty",
    ),
    "UPLOAD_MAX_IN_FLIGHT": ("per-artist limit on unfinished uploads", None),
    "UPLOAD_MAX_STORED_BYTES": ("per-artist limit on stored source bytes", None),
}

_ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION_MD = _ROOT / "docs" / "configuration.md"
API_MD = _ROOT / "docs" / "api.md"
CLI_MD = _ROOT / "docs" / "cli.md"


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in get_args(annotation) if a is not type(None)]
        return _type_name(parts[0]) if len(parts) == 1 else " or ".join(map(_type_name, parts))
    names = {str: "text", int: "integer", float: "number", bool: "boolean", Path: "path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(name: str, field: Any) -> str:
    override = DESCRIPTIONS.get(name, ("", None))[1]
    if override is not None:
        return override
    value = field.default
    if value is PydanticUndefined or value is None:
        return "unset"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`./{value}`"
    return f"`{value}`"


def undocumented() -> list[str]:
    return [name for name in Settings.model_fields if name not in DESCRIPTIONS]


def render_configuration() -> str:
    rows = [
        f"| `{name}` | {_type_name(field.annotation)} | "
        f"{DESCRIPTIONS.get(name, ('(undocumented)', None))[0]} | {_default(name, field)} |"
        for name, field in Settings.model_fields.items()
    ]
    return "\n".join(
        [
            "# Configuration",
            "",
            "<!-- Generated from src/lufy/settings.py by `python -m lufy.docgen`: do not edit. -->",
            "",
            "Environment variables only, read once at start by every process (`lufy serve`,",
            "`lufy projector`, `lufy worker`, every CLI command). A missing or malformed value",
            "stops the process with one line naming the variable, e.g.",
            "`invalid configuration: READ_REPLICA_MAX_LAG: must be a number of seconds greater "
            "than 0`.",
            "`LUFY_ENV=production` refuses unsafe defaults (a short `JWT_SECRET`, the default",
            "`lufy_app` password, a loopback `APP_URL`, the `file`/`log` e-mail backends).",
            "",
            "| variable | type | meaning | default |",
            "|---|---|---|---|",
            *rows,
            "",
            "Not read by `Settings` but honoured: `PROMETHEUS_MULTIPROC_DIR` (an empty directory",
            "private to one `lufy serve --workers N`, so that `/metrics` adds up all workers;",
            "`docs/operations.md`), and the AWS SDK's own variables (`AWS_ACCESS_KEY_ID`,",
            "`AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`) for S3.",
            "",
        ]
    )


def _openapi() -> dict[str, Any]:
    # Building the app connects to nothing: pools open in the lifespan, which is not run.
    app = create_app(bootstrap(load_settings(LUFY_ENV="test", JWT_SECRET="x" * 40)))
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return json.loads(json.dumps(document, default=str))  # type: ignore[no-any-return]


def render_api() -> str:
    document = _openapi()
    lines = [
        "# HTTP API",
        "",
        "<!-- Generated from the app's OpenAPI document by `python -m lufy.docgen`: "
        "do not edit. -->",
        "",
        "JSON in and out. Errors are RFC 9457 `application/problem+json` documents with `status`,",
        "`title` and `detail` (which names what is wrong). Authenticated routes take",
        "`Authorization: Bearer <access token>` (JWT HS256 with `sub`, `sid`, `role`, `iat`,",
        "`exp`, `iss`, `aud`; `docs/auth.md`). Every `/api` response carries the rate-limit",
        "fields `RateLimit-Policy` and `RateLimit`; a 429 carries `Retry-After`",
        "(`docs/ratelimit.md`). Responses read from the read replica carry `Lufy-Data-Lag`",
        "(seconds behind the primary; `docs/operations.md`). Every response carries",
        "`X-Request-Id` and `X-Correlation-Id`.",
        "",
        "The machine-readable document is served at `/schema/openapi.json`, with interactive",
        "docs at `/schema`; request and response shapes are there. Dashboard parameters",
        "(`range`, `from`/`to`, `tz`, granularities) and the metric definitions behind every",
        "number: `docs/analytics.md`. Health and metrics: `docs/operations.md`. The routes:",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in sorted(document.get("paths", {}).items()):
        for method in ("get", "post", "put", "patch", "delete"):
            operation = item.get(method)
            if operation is None:
                continue
            tag = (operation.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    for tag in sorted(by_tag):
        lines += [f"## {tag}", "", "| method | path | what | answers |", "|---|---|---|---|"]
        for method, path, operation in by_tag[tag]:
            codes = ", ".join(sorted(operation.get("responses", {})))
            summary = str(operation.get("summary") or "").replace("|", "\\|")
            lines.append(f"| {method} | `{path}` | {summary} | {codes} |")
        lines.append("")
    return "\n".join(lines)


def _commands() -> list[tuple[str, Any]]:
    context = click.Context(cli, info_name="lufy")
    found: list[tuple[str, Any]] = []

    def walk(group: Any, prefix: str, ctx: click.Context) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None:
                continue
            full = f"{prefix} {name}"
            if isinstance(command, click.Group):
                walk(command, full, click.Context(command, info_name=name, parent=ctx))
            else:
                found.append((full, command))

    walk(cli, "lufy", context)
    return found


def render_cli() -> str:
    lines = [
        "# Command line: `lufy`",
        "",
        "<!-- Generated from the click commands by `python -m lufy.docgen`: do not edit. -->",
        "",
        "Every command reads the configuration of `docs/configuration.md`. Exit status: 0 on",
        "success, 1 on a handled failure (one clear line on stderr), 2 on bad usage.",
        "",
    ]
    for full, command in _commands():
        ctx = click.Context(command, info_name=full)
        usage = " ".join(command.collect_usage_pieces(ctx))
        lines += [f"## `{full}`", "", (command.help or "").strip().split("\n\n")[0], ""]
        lines += ["```", f"{full} {usage}".rstrip(), "```", ""]
        options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
        for option in options:
            record = option.get_help_record(ctx)
            if record is None or record[0] in ("--help", "-h, --help"):
                continue
            lines.append(f"- `{record[0]}`: {record[1]}".rstrip(": "))
        if any(o.get_help_record(ctx) for o in options):
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = args == ["--check"]
    if args and not check:
        print("usage: python -m lufy.docgen [--check]", file=sys.stderr)
        return 2
    missing = undocumented()
    if missing:
        print(
            f"settings without a description in src/lufy/docgen.py: {', '.join(missing)}",
            file=sys.stderr,
        )
        if check:
            return 1
    stale = []
    generated = (
        (CONFIGURATION_MD, render_configuration()),
        (API_MD, render_api()),
        (CLI_MD, render_cli()),
    )
    for path, text in generated:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(path.name)
            if not check:
                path.write_text(text, encoding="utf-8")
    if check and stale:
        print(
            f"docs/{', docs/'.join(stale)} out of date: run `python -m lufy.docgen`",
            file=sys.stderr,
        )
        return 1
    if not check:
        print(f"wrote {', '.join(stale) or 'nothing (up to date)'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
