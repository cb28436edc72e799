#!/usr/bin/env bash
# Build the web app (frontend/) when its sources changed: Node and npm from Debian when missing,
# `npm ci` when the lock file changed, `npm run build` into frontend/dist (served by lufy serve).
set -euo pipefail
cd "$(dirname "$0")/../frontend"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi
# Vite 8 needs Node 20.19 or later (Debian 12's own nodejs is 18: use a newer Debian or NodeSource).
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "scripts/web.sh: Node $(node --version) is too old for the web app's build: Node 20.19+ is needed" >&2
  exit 1
fi

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat node_modules/.lufy-lock 2>/dev/null)" != "$lock_hash" ]; then
  npm ci --no-audit --no-fund
  echo "$lock_hash" > node_modules/.lufy-lock
fi

source_hash=$(find src public scripts index.html package-lock.json vite.config.ts tsconfig.json \
  -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ ! -f dist/index.html ] || [ "$(cat dist/.source-hash 2>/dev/null)" != "$source_hash" ]; then
  npm run build
  echo "$source_hash" > dist/.source-hash
fi
