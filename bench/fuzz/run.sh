#!/usr/bin/env bash
# A long schemathesis run against a real `lufy serve`, anonymous and signed in (artist, admin):
# no 5xx, no answer that contradicts the OpenAPI document. CI runs the same test bounded
# (3 examples per operation, 20 s per identity); this one defaults to 100 and 10 minutes each.
#
#   bench/fuzz/run.sh                      # defaults below
#   LUFY_FUZZ_SECONDS=3600 bench/fuzz/run.sh -k artist
#
# Reports (JUnit, one per identity) land in $LUFY_FUZZ_REPORT_DIR; failures print a curl line
# and an `st replay` id to reproduce them.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/_venv.sh
bash scripts/services.sh
export LUFY_FUZZ_EXAMPLES="${LUFY_FUZZ_EXAMPLES:-100}"
export LUFY_FUZZ_SECONDS="${LUFY_FUZZ_SECONDS:-600}"
export LUFY_FUZZ_REPORT_DIR="${LUFY_FUZZ_REPORT_DIR:-$PWD/var/fuzz}"
export LUFY_FUZZ_SEED="${LUFY_FUZZ_SEED:-$RANDOM}"
echo "fuzzing: ${LUFY_FUZZ_EXAMPLES} examples/operation, ${LUFY_FUZZ_SECONDS}s per identity, seed ${LUFY_FUZZ_SEED}, reports in ${LUFY_FUZZ_REPORT_DIR}" >&2
exec pytest tests/e2e/test_openapi_fuzz.py -p no:cacheprovider "$@"
