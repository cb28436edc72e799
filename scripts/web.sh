#!/usr/bin/env bash
# Build the web app (frontend/) when its sources changed: Node and npm from Debian when missing,
# `npm ci` when the lock file changed, `npm run build` into frontend/dist (served by lufy serve).
set -euo pipefail
cd "$(dirname "$0")/../frontend"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq && apt-get install -y -qq nodejs npm
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
