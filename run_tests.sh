#!/usr/bin/env bash
# The kit's test suite: the environment (created if needed), then pytest over tests/ and, through
# nbval, every notebook in the 'smoke' profile. Extra arguments go to pytest (e.g. -k enhance).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$ROOT/scripts/ensure_env.sh"
ensure_env
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
