"""First load of the web app's dashboard: compressed JavaScript against the 300 KB budget.

    python bench/web_first_load.py          (after `npm run build` in frontend/)

Reads frontend/dist: the entry script and its preloads named by index.html, plus the dashboard
chunk the entry imports on the way to the first screen (the player's hls.js loads only on the
first play). Prints their sizes raw, gzip and brotli (the `.gz`/`.br` files the build wrote and
`lufy serve` sends), the ratio of the brotli total to the budget, and, as the in-run baseline,
the ratio to what the same files cost uncompressed. The browser test
(tests/e2e/test_webapp_browser.py) measures the bytes Chromium actually transferred.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DIST = Path(__file__).resolve().parents[1] / "frontend" / "dist"
BUDGET = 300 * 1024


def main() -> int:
    index = DIST / "index.html"
    if not index.is_file():
        print("frontend/dist is not built: run `npm ci && npm run build` in frontend/")
        return 1
    html = index.read_text()
    first = {m for m in re.findall(r'(?:src|href)="/(assets/[^"]+\.js)"', html)}
    entry = next(DIST.joinpath(p) for p in first)
    dashboard = re.findall(r"\./(Dashboard-[\w-]+\.js)", entry.read_text())
    first |= {f"assets/{name}" for name in dashboard}
    rows = []
    for rel in sorted(first):
        path = DIST / rel
        sizes = [path.stat().st_size]
        for ext in (".gz", ".br"):
            compressed = path.with_name(path.name + ext)
            sizes.append(compressed.stat().st_size if compressed.is_file() else sizes[0])
        rows.append((rel, *sizes))
    raw, gz, br = (sum(r[i] for r in rows) for i in (1, 2, 3))
    print(f"{'file':48} {'raw':>10} {'gzip':>10} {'brotli':>10}")
    for rel, r, g, b in rows:
        print(f"{rel:48} {r:>10,} {g:>10,} {b:>10,}")
    print(f"{'total':48} {raw:>10,} {gz:>10,} {br:>10,}")
    print(f"brotli / budget (300 KB): {br / BUDGET:.3f}  gzip / budget: {gz / BUDGET:.3f}")
    print(f"brotli / uncompressed (baseline): {br / raw:.3f}")
    return 0 if br <= BUDGET and gz <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
