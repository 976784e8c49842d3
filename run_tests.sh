#!/usr/bin/env bash
# The kit's test suite: the environment (created if needed), ruff (lint, import order, formatting:
# a finding fails the suite), then pytest over tests/ and, through nbval, every notebook in the
# 'smoke' profile. Extra arguments go to pytest (e.g. -k enhance).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$ROOT/scripts/ensure_env.sh"
ensure_env
cd "$ROOT"
echo "ruff check and ruff format --check (pyproject.toml [tool.ruff]) ..."
if ! "$ROOT/.venv/bin/ruff" check --quiet . || ! "$ROOT/.venv/bin/ruff" format --check --quiet .; then
  echo "error: ruff found the problems above; \`.venv/bin/ruff check --fix . && .venv/bin/ruff format .\` fixes most of them." >&2
  exit 1
fi
exec "$ROOT/.venv/bin/python" -m pytest "$@"
