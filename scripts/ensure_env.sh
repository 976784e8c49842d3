#!/usr/bin/env bash
# Create or reuse the kit's virtual environment (.venv) with the pinned dependencies and a Jupyter
# kernel for it. Sourced by run_all.sh and run_tests.sh; idempotent: a second call only checks a
# stamp, and reinstalls when requirements*.txt, pyproject.toml or the Python version changed.
#
# Needs only Python >= 3.11 (set GANET_PYTHON to choose one). torch is installed first and on its
# own, pinned, so that no other package can pull in an unpinned build with GBs of CUDA libraries.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
KERNEL_NAME="ganet-kit"

_find_python() {
  local candidate
  for candidate in "${GANET_PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

ensure_env() {
  local python stamp wanted log
  python="$(_find_python)" || { echo "error: the kit needs Python 3.11 or newer on PATH (or GANET_PYTHON=/path/to/python3.11)." >&2; return 2; }
  wanted="$(cat "$ROOT/requirements-torch.txt" "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-$("$python" -c 'import sys; print(sys.version.split()[0])')"
  stamp="$VENV/.ganet-installed"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    return 0
  fi
  log="$VENV/install.log"
  echo "setting up the environment in $VENV (first run: a few minutes; log: $log)"
  [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV" || return 1
  rm -f "$stamp"
  : > "$log"
  {
    "$VENV/bin/python" -m pip install --disable-pip-version-check -r "$ROOT/requirements-torch.txt" &&
    "$VENV/bin/python" -m pip install --disable-pip-version-check -r "$ROOT/requirements.txt" &&
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps -e "$ROOT" &&
    "$VENV/bin/python" -m ipykernel install --sys-prefix --name "$KERNEL_NAME" --display-name "Python (ganet-kit)"
  } >>"$log" 2>&1 || {
    echo "error: installing the dependencies failed; the end of $log says why:" >&2
    tail -n 20 "$log" >&2
    return 1
  }
  echo "$wanted" > "$stamp"
  echo "environment ready: $VENV (Jupyter kernel '$KERNEL_NAME')"
}
