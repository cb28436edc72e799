"""Hatch build hook: ship the built web app (frontend/dist) in the wheel as lufy/_data/web.

`lufy serve` serves it at `/` without Node. The app is built by `npm ci && npm run build` in
frontend/ (./scripts/dev, ./scripts/test and the Dockerfile do this first). A wheel built
without it still works as an API server and says so; set LUFY_REQUIRE_WEB=1 (the Dockerfile
does) to make a missing build an error instead. Editable installs read frontend/dist in place.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class WebAppBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return
        dist = Path(self.root) / "frontend" / "dist"
        if (dist / "index.html").is_file():
            build_data["force_include"][str(dist)] = "lufy/_data/web"
            return
        message = "frontend/dist is not built: this wheel serves the API but no web app"
        if os.environ.get("LUFY_REQUIRE_WEB") == "1":
            raise RuntimeError(f"{message} (run `npm ci && npm run build` in frontend/)")
        print(f"warning: {message}", file=sys.stderr)
