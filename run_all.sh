#!/usr/bin/env bash
# Run the kit's notebooks in order, headlessly, with papermill.
#
#   ./run_all.sh [--profile smoke|default|paper] [--brats DIR] [--nfbs DIR] [--fresh]
#
# Creates the environment if needed (scripts/ensure_env.sh), then executes notebooks/NN_*.ipynb
# into runs/<profile>/notebooks/, where the figures and tables also go (runs/ is git-ignored).
# Without --brats / --nfbs (or GANET_BRATS_DIR / GANET_NFBS_DIR), synthetic data is generated into
# the run folder. Stops at the first failing notebook, with a non-zero exit, naming the executed
# notebook that shows the error.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
PROFILE=default BRATS="" NFBS="" FRESH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE="${2:?--profile needs a name}"; shift 2 ;;
    --brats) BRATS="${2:?--brats needs a folder}"; shift 2 ;;
    --nfbs) NFBS="${2:?--nfbs needs a folder}"; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1'; see ./run_all.sh --help" >&2; exit 2 ;;
  esac
done
if [ ! -f "$ROOT/configs/$PROFILE.yaml" ]; then
  echo "error: there is no profile '$PROFILE' (configs/$PROFILE.yaml); use smoke, default or paper." >&2
  exit 2
fi

source "$ROOT/scripts/ensure_env.sh"
ensure_env

RUN_DIR="${GANET_RUNS:-$ROOT/runs}/$PROFILE"
if [ "$FRESH" = 1 ]; then
  echo "--fresh: removing $RUN_DIR"
  rm -rf "$RUN_DIR"
fi
mkdir -p "$RUN_DIR/notebooks"
params=(-r profile "$PROFILE" -r run_dir "$RUN_DIR")
[ -n "$BRATS" ] && params+=(-r brats_dir "$(cd "$BRATS" && pwd)")
[ -n "$NFBS" ] && params+=(-r nfbs_dir "$(cd "$NFBS" && pwd)")

timings="$RUN_DIR/timings.tsv"
printf 'notebook\tseconds\n' > "$timings"
echo "profile '$PROFILE', run folder $RUN_DIR"
for notebook in "$ROOT"/notebooks/[0-9][0-9]_*.ipynb; do
  name="$(basename "$notebook")"
  executed="$RUN_DIR/notebooks/$name"
  echo "== $name"
  start=$EPOCHREALTIME
  if ! "$ROOT/.venv/bin/papermill" "$notebook" "$executed" -k ganet-kit --cwd "$ROOT/notebooks" \
        "${params[@]}" --progress-bar; then
    echo "error: $name failed; the executed notebook showing the error is $executed" >&2
    exit 1
  fi
  seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\n' "$name" "$seconds" >> "$timings"
  echo "   done in $seconds s -> $executed"
done
echo "all notebooks ran; executed notebooks, figures and tables are in $RUN_DIR (timings: $timings)"
