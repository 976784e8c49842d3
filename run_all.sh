#!/usr/bin/env bash
# Run the kit's notebooks in order, headlessly, with papermill, and write the results report.
#
#   ./run_all.sh [--profile smoke|default|paper|FILE.yaml] [--brats DIR] [--nfbs DIR] [--fresh]
#
# Creates the environment if needed (scripts/ensure_env.sh), then executes notebooks/NN_*.ipynb
# into runs/<profile>/notebooks/ and writes runs/<profile>/report.md (figures, tables and per-case
# metrics beside it; runs/ is git-ignored). Without --brats / --nfbs (or GANET_BRATS_DIR /
# GANET_NFBS_DIR) the default and smoke profiles generate synthetic data; the paper profile
# refuses to start without real data that passes `ganet validate`. A failing notebook stops the
# run (exit 1) naming the executed notebook that shows the error; running the same command again
# resumes with that notebook. A second run reuses data, caches and checkpoints whose settings are
# unchanged and says what it reused; --fresh deletes the run folder first and redoes everything.
# Every cell has the profile's time limit (notebooks.cell_timeout_s): a cell over it fails the run
# (exit 1). Ctrl-C or SIGTERM stops the kernel and exits 130 / 143; the same command resumes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
PROFILE=default BRATS="${GANET_BRATS_DIR:-}" NFBS="${GANET_NFBS_DIR:-}" FRESH=0
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
# A profile is a name (ganet_lib/configs/NAME.yaml) or a YAML file of your own, which may start
# with `extends: default` (see README, "Your own data"); its run folder is named after the file.
case "$PROFILE" in
  *.yaml|*.yml)
    if [ ! -f "$PROFILE" ]; then
      echo "error: the profile file '$PROFILE' does not exist; give a YAML file or one of smoke, default, paper." >&2
      exit 2
    fi
    PROFILE="$(cd "$(dirname "$PROFILE")" && pwd)/$(basename "$PROFILE")" ;;
  *)
    if [ ! -f "$ROOT/ganet_lib/configs/$PROFILE.yaml" ]; then
      echo "error: there is no profile '$PROFILE' (ganet_lib/configs/$PROFILE.yaml); use smoke, default or paper, or a YAML file." >&2
      exit 2
    fi ;;
esac
NAME="$(basename "$PROFILE")"; NAME="${NAME%.y*ml}"
for pair in "--brats:$BRATS" "--nfbs:$NFBS"; do
  folder="${pair#*:}"
  if [ -n "$folder" ] && [ ! -d "$folder" ]; then
    echo "error: the folder '$folder' given with ${pair%%:*} does not exist; see data/README.md." >&2
    exit 2
  fi
done
if [ "$PROFILE" = paper ] && { [ -z "$BRATS" ] || [ -z "$NFBS" ]; }; then
  echo "error: the paper profile reproduces the paper on the real data and needs both --brats DIR and --nfbs DIR (see data/README.md for getting BraTS 2020 and NFBS); use --profile default for the synthetic run." >&2
  exit 2
fi

source "$ROOT/scripts/ensure_env.sh"
ensure_env

if [ "$PROFILE" = paper ]; then
  echo "checking the data with ganet validate ..."
  if ! "$ROOT/.venv/bin/ganet" validate --brats "$BRATS" --nfbs "$NFBS"; then
    echo "error: the data in '$BRATS' / '$NFBS' failed 'ganet validate' (problems listed above); fix or re-download the named files, then run again." >&2
    exit 2
  fi
fi

RUN_DIR="${GANET_RUNS:-$ROOT/runs}/$NAME"
if [ "$FRESH" = 1 ]; then
  echo "--fresh: removing $RUN_DIR"
  rm -rf "$RUN_DIR"
fi
# The run folder is made by the pipeline once the profile has loaded: a bad profile leaves none behind.
args=(--profile "$PROFILE" --run "$RUN_DIR")
[ -n "$BRATS" ] && args+=(--brats "$(cd "$BRATS" && pwd)")
[ -n "$NFBS" ] && args+=(--nfbs "$(cd "$NFBS" && pwd)")
echo "profile '$PROFILE', run folder $RUN_DIR"
exec "$ROOT/.venv/bin/python" -m ganet_lib.runner.pipeline "${args[@]}"
