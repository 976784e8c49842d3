"""Count headless hangs of the widget notebooks (05, 06) on a busy machine.

Upstream, executing a cell that builds ipywidgets sometimes blocks forever (nbclient #312,
papermill #711/#723); it was seen here once in `./run_all.sh` on a busy 2-core machine. This
script tries to make it happen: it prepares one smoke-profile run folder (GAN and both U-Nets
trained once), keeps every core busy with spinning processes, then executes each widget notebook
`--runs` times with plain papermill (no per-cell limit, as a user would) and calls a run that
takes longer than `--bound` seconds a hang (killed, kernel included).

    .venv/bin/python benchmarks/stress_widgets.py --runs 30 --bound 120

Prints one line per run and a table of hangs per notebook; writes `stress_widgets.json` into
`--out` (default benchmarks/out/).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from ganet_lib.runner import processes  # noqa: E402
from ganet_lib.runner.pipeline import KERNEL, NOTEBOOK_DIR  # noqa: E402


def spin() -> None:
    while True:
        pass


def prepare(run_dir: Path) -> None:
    """A smoke run folder in which notebooks 05 and 06 only evaluate (nothing left to train)."""
    from ganet_lib.evaluation.predict import choose_postprocessing
    from ganet_lib.method.train_gan import pretrain_gan_for_run
    from ganet_lib.method.train_seg import train_segmentation_for_run
    from ganet_lib.run import setup_run

    run = setup_run("smoke", str(run_dir), progress=False)
    pretrain_gan_for_run(run, progress=False)
    for variant in ("ganet", "unet"):
        train_segmentation_for_run(run, variant, progress=False)
        choose_postprocessing(run, variant, progress=False)


def execute(notebook: Path, run_dir: Path, out: Path, bound: float) -> tuple[str, float]:
    """Run papermill on `notebook`; 'ok', 'failed' or 'hang' (over `bound` s: killed with its kernel)."""
    command = [
        sys.executable,
        "-m",
        "papermill",
        str(notebook),
        str(out),
        "-k",
        KERNEL,
        "-p",
        "profile",
        "smoke",
        "-p",
        "run_dir",
        str(run_dir),
        "--cwd",
        str(notebook.parent),
    ]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = child.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        processes.stop_tree(child.pid)  # the kernel sits in a session of its own
        child.communicate()
        return "hang", time.perf_counter() - started
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        print(stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {child.returncode}", file=sys.stderr)
        return "failed", seconds
    return "ok", seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="executions of each notebook")
    parser.add_argument("--bound", type=float, default=120.0, help="seconds after which a run counts as hung")
    parser.add_argument(
        "--busy", type=int, default=os.cpu_count() or 2, help="spinning processes that keep the cores busy"
    )
    parser.add_argument("--notebooks", nargs="+", default=["05_threshold_sweep", "06_evaluation"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()

    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="ganet-stress-"))
    os.environ["GANET_RUNS"] = str(work)
    run_dir = work / "smoke"
    print(f"preparing a smoke run folder in {run_dir} ...", flush=True)
    prepare(run_dir)
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for spinner in spinners:
        spinner.start()
    results: dict[str, list[dict]] = {name: [] for name in args.notebooks}
    try:
        for attempt in range(1, args.runs + 1):
            for name in args.notebooks:
                outcome, seconds = execute(
                    NOTEBOOK_DIR / f"{name}.ipynb", run_dir, work / f"{name}-{attempt}.ipynb", args.bound
                )
                results[name].append({"run": attempt, "outcome": outcome, "seconds": round(seconds, 1)})
                print(f"{name} run {attempt}/{args.runs}: {outcome} in {seconds:.1f} s", flush=True)
    finally:
        for spinner in spinners:
            spinner.terminate()

    print(f"\n{args.busy} spinning processes on {os.cpu_count()} cores; a run over {args.bound:.0f} s is a hang")
    print(f"{'notebook':<22}{'runs':>6}{'ok':>6}{'failed':>8}{'hangs':>7}{'median s':>10}")
    summary = {}
    for name, rows in results.items():
        counts = {k: sum(r["outcome"] == k for r in rows) for k in ("ok", "failed", "hang")}
        ok_seconds = sorted(r["seconds"] for r in rows if r["outcome"] == "ok")
        median = ok_seconds[len(ok_seconds) // 2] if ok_seconds else float("nan")
        summary[name] = {**counts, "runs": len(rows), "median_seconds": median}
        print(f"{name:<22}{len(rows):>6}{counts['ok']:>6}{counts['failed']:>8}{counts['hang']:>7}{median:>10.1f}")
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "bound_seconds": args.bound,
        "busy": args.busy,
        "cores": os.cpu_count(),
        "summary": summary,
        "runs": results,
        "git": commit,
    }  # the notebooks that ran: the checkout when the loop started
    (args.out / "stress_widgets.json").write_text(json.dumps(record, indent=1))
    return 1 if any(s["hang"] for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
