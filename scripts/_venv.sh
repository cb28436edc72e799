# Sourced by the other scripts: make sure .venv exists and holds this checkout's lufy, with the
# exact versions of requirements-dev.lock (hash-checked). After changing pyproject.toml's
# dependencies, run scripts/lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.lufy-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements-dev.lock -nt "$stamp" ]; then
  PYTHON="$PYTHON" bash scripts/lock --check
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q --require-hashes --no-deps -r requirements-dev.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
