"""The engine of `run_all.sh`: run the notebooks in order with papermill, resume, time, report.

- Each notebook runs headlessly into `RUN/notebooks/<name>` with the run's parameters.
- A failing notebook stops the run (exit 1) with the path of the executed notebook that shows
  the error; bad input (a profile's unknown setting, a `KitInputError` raised in a notebook) gets
  its one sentence and exit 2, as `ganet` does. Progress is kept in `RUN/notebooks/progress.json`;
  the next run skips the notebooks that completed (when the notebooks and parameters are
  unchanged) and goes on from the failed one.
- A run that completes removes the progress file, so the next run executes every notebook again;
  the notebooks then reuse the data, caches and checkpoints whose settings are unchanged, and the
  runner says which artefacts were reused (their files did not change) and which were rebuilt.
- With more than one GPU visible, the two training steps first run as `accelerate launch
  --multi_gpu` subprocesses (the notebooks then find and reuse their checkpoints).
- Nothing waits forever: every cell has a time limit (`notebooks.cell_timeout_s` of the profile);
  a cell over it fails the run (exit 1) naming the notebook, the cell and the limit. The kernels
  build no widgets (`GANET_WIDGETS=0`, see `frontend`).
- SIGINT and SIGTERM stop the kernel, keep the progress file, say how to resume and exit with
  130 / 143 (128 + the signal's number, as shells report a process killed by it).
- At the end: `RUN/timings.tsv` and `RUN/report.md` (see `report`).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ganet_lib.config import REPO_ROOT, VARIANTS, commit_description, load_config
from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_write_text
from ganet_lib.run import RunLayout
from ganet_lib.runner import processes
from ganet_lib.teaching.frontend import FORCE_VARIABLE

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL = "ganet-kit"
# After a cell's reply, how long its last outputs may take to arrive. nbclient's default, 4 s, would
# fail a cell that finished but whose output was delayed on a loaded machine (not seen here; cheap).
IOPUB_TIMEOUT_S = 60


def notebook_paths(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def run_key(notebooks: list[Path], parameters: dict) -> str:
    """Changes when a notebook's file or a parameter changes: then nothing is skipped."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode())
    for path in notebooks:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def artefacts(run_dir: Path) -> dict[str, int]:
    """What later runs may reuse, with a stamp (modification time) of each."""
    found = {}
    layout = RunLayout(run_dir)
    for path, name in (
        (layout.synthetic_dir / "SYNTHETIC.json", "synthetic data"),
        (layout.gan.last, "GAN checkpoint"),
        *((layout.seg(variant).last, f"{variant} checkpoint") for variant in VARIANTS),
    ):
        if path.is_file():
            found[name] = path.stat().st_mtime_ns
    for cache in sorted(layout.cache_dir.glob("*-*")):
        if (cache / "manifest.json").is_file():
            found[f"cache {cache.name}"] = (cache / "manifest.json").stat().st_mtime_ns
    return found


def peak_child_mb() -> float:
    """Largest resident memory of any finished child process (the notebook kernels), in MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def launch_training(notebook: str, parameters: dict, gpus: int) -> None:
    """Before notebooks 03 and 04 on several GPUs: train with `accelerate launch` across them."""
    base = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(gpus),
        "-m",
        "ganet_lib",
    ]
    run = ["--config", parameters["profile"], "--run", parameters["run_dir"]]
    if notebook.startswith("03"):
        commands = [
            base
            + ["pretrain-gan", *run, "--resume"]
            + (["--nfbs", parameters["nfbs_dir"]] if parameters.get("nfbs_dir") else [])
        ]
    elif notebook.startswith("04"):
        data = ["--brats", parameters["brats_dir"]] if parameters.get("brats_dir") else []
        commands = [base + ["train-seg", *run, "--resume", "--variant", variant] + data for variant in VARIANTS]
    else:
        return
    for command in commands:
        print("   " + " ".join(command[1:]), flush=True)
        launcher = subprocess.Popen(command)
        try:
            if launcher.wait() != 0:
                raise subprocess.CalledProcessError(launcher.returncode, command)
        except BaseException:  # a signal (Interrupted) included: stop the launcher and its workers together
            processes.stop_tree(launcher.pid)
            raise


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (raised in the main thread by `signals_interrupt`).

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it;
    papermill's kernel context manager shuts the kernel down as the exception passes."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def signals_interrupt():
    """Turn SIGINT and SIGTERM into `Interrupted` while the block runs. Once one has arrived,
    further ones are ignored, so that stopping the kernel is not cut short by a second Ctrl-C."""

    def handler(signum, frame):
        for each in (signal.SIGINT, signal.SIGTERM):
            signal.signal(each, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {each: signal.signal(each, handler) for each in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for each, old_handler in previous.items():
            signal.signal(each, old_handler)


def timed_out_cell(executed: Path) -> str:
    """'cell N of M (`first line`)' for the cell a timeout stopped: papermill stamps a start time
    on each cell it starts and writes the notebook when one ends, timeouts included."""
    import nbformat

    cells = nbformat.read(executed, as_version=4).cells
    started = [i for i, cell in enumerate(cells) if cell.metadata.get("papermill", {}).get("start_time")]
    if not started:
        return "a cell"
    index = started[-1]
    first_line = next((line for line in cells[index].source.splitlines() if line.strip()), "")
    return f"cell {index + 1} of {len(cells)} (`{first_line.strip()[:60]}`)"


def run_notebooks(
    parameters: dict,
    run_dir: Path,
    notebooks: list[Path] | None = None,
    report: bool = True,
    cell_timeout_s: int | None = None,
) -> int:
    """Execute `notebooks` (default: all of notebooks/) for one run; returns the exit status.

    `cell_timeout_s` (default: the profile's `notebooks.cell_timeout_s`) bounds every cell. Call
    it inside `signals_interrupt()` (as `main` does) for SIGINT/SIGTERM to stop it cleanly."""
    import papermill
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    # Headless: the kernels build no widget controls, even when this runner was itself started
    # from a notebook (whose JPY_SESSION_NAME the kernels would inherit).
    os.environ[FORCE_VARIABLE] = "0"
    config = load_config(parameters["profile"])
    cell_limit = cell_timeout_s or config.notebooks.cell_timeout_s
    limit_source = (
        "given by the caller" if cell_timeout_s else f"notebooks.cell_timeout_s of profile '{config.profile}'"
    )
    notebooks = notebook_paths() if notebooks is None else notebooks
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    progress_path = out_dir / "progress.json"
    key = run_key(notebooks, parameters)
    progress = {"key": key, "completed": [], "seconds": {}}
    if progress_path.is_file():
        saved = json.loads(progress_path.read_text())
        if saved.get("key") == key:
            progress = saved
        else:
            print(
                "the notebooks or parameters changed since the interrupted run: starting again from the first notebook"
            )
    before = artefacts(run_dir)
    gpus = visible_gpus()
    started_run = time.perf_counter()
    skipped = []
    for notebook in notebooks:
        executed = out_dir / notebook.name
        if notebook.name in progress["completed"]:
            print(
                f"== {notebook.name}: completed in the interrupted run ({progress['seconds'][notebook.name]:.1f} s), "
                "skipped; --fresh redoes everything"
            )
            skipped.append(notebook.name)
            continue
        print(f"== {notebook.name}", flush=True)
        started = time.perf_counter()
        children_before = set(processes.descendants(os.getpid()))
        try:
            if gpus > 1:
                launch_training(notebook.name, parameters, gpus)
            papermill.execute_notebook(
                notebook,
                executed,
                parameters=parameters,
                kernel_name=KERNEL,
                cwd=str(notebook.parent),
                progress_bar=True,
                execution_timeout=cell_limit,
                iopub_timeout=IOPUB_TIMEOUT_S,
            )
        except (PapermillExecutionError, subprocess.CalledProcessError, CellTimeoutError, Interrupted) as exc:
            # papermill shut the kernel down on the way out; stop whatever it left (a kernel that
            # ignored the request, its workers) before saying anything.
            processes.stop([pid for pid in processes.descendants(os.getpid()) if pid not in children_before])
            if isinstance(exc, Interrupted):
                print(
                    f"stopped by {exc} during {notebook.name} ({len(progress['completed'])} of {len(notebooks)} "
                    "notebooks completed and kept): "
                    f"run the same command again to resume with {notebook.name}.",
                    file=sys.stderr,
                )
                return 128 + exc.signum
            if isinstance(exc, CellTimeoutError):
                what = (
                    f"finished, but its output did not end within {IOPUB_TIMEOUT_S} s"
                    if "IOPub" in str(exc)
                    else f"ran past its limit of {cell_limit} s ({limit_source}) and was stopped"
                )
                print(
                    f"error: {notebook.name}: {timed_out_cell(executed)} {what}, see {executed}; "
                    "raise the limit if the cell is only slow, and run the same command again to resume with this "
                    "notebook.",
                    file=sys.stderr,
                )
                return 1
            if isinstance(exc, PapermillExecutionError) and exc.ename == KitInputError.__name__:
                # Bad input met inside a notebook (a data folder, a setting): its sentence and exit 2, as `ganet` gives.
                print(
                    f"error: {notebook.name}: {exc.evalue} (the executed notebook: {executed}; after the fix the same "
                    "command resumes with this notebook)",
                    file=sys.stderr,
                )
                return 2
            reason = (
                f"{exc.ename}: {exc.evalue}"
                if isinstance(exc, PapermillExecutionError)
                else f"the training launch failed ({exc})"
            )
            print(
                f"error: {notebook.name} failed ({reason}); the executed notebook showing the error is {executed}. "
                "Fix the cause and run the same command again: it resumes with this notebook.",
                file=sys.stderr,
            )
            return 1
        seconds = time.perf_counter() - started
        progress["completed"].append(notebook.name)
        progress["seconds"][notebook.name] = round(seconds, 1)
        progress["peak_mb"] = max(progress.get("peak_mb", 0.0), peak_child_mb())
        atomic_write_text(progress_path, json.dumps(progress, indent=1))
        print(f"   done in {seconds:.1f} s -> {executed}", flush=True)

    after = artefacts(run_dir)
    reused = sorted(name for name, stamp in after.items() if before.get(name) == stamp)
    rebuilt = sorted(name for name in after if name not in reused)
    timings = [{"notebook": path.name, "seconds": progress["seconds"][path.name]} for path in notebooks]
    atomic_write_text(
        run_dir / "timings.tsv", "notebook\tseconds\n" + "".join(f"{t['notebook']}\t{t['seconds']}\n" for t in timings)
    )
    summary = {
        "timings": timings,
        "wall_seconds": round(time.perf_counter() - started_run, 1),
        "skipped": skipped,  # completed by an interrupted earlier run
        "peak_mb": round(max(progress.get("peak_mb", 0.0), peak_child_mb()), 0),
        "reused": reused,
        "rebuilt": rebuilt,
        "gpus": gpus,
        "commit": commit_description(),  # the code that made the run (`ganet results` says it)
    }
    from ganet_lib.runner.report import machine_description, write_report  # late: they import torch

    summary["machine"] = machine_description()  # where the notebooks ran (`ganet book` says it on every page)
    atomic_write_text(run_dir / "run_summary.json", json.dumps(summary, indent=1))
    if report:
        print(f"report: {write_report(run_dir)}")
    progress_path.unlink(missing_ok=True)
    print(f"reused (unchanged settings): {', '.join(reused) or 'nothing'}")
    print(f"built in this run: {', '.join(rebuilt) or 'nothing'}")
    print(
        f"all {len(notebooks)} notebooks ran; peak memory of a notebook kernel {summary['peak_mb']:.0f} MB; "
        f"executed notebooks, figures, tables and report.md are in {run_dir}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run the kit's notebooks in order (called by run_all.sh).")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--brats", default="")
    parser.add_argument("--nfbs", default="")
    parser.add_argument(
        "--notebooks", type=Path, default=NOTEBOOK_DIR, help="folder of NN_*.ipynb to run (default: the kit's)"
    )
    args = parser.parse_args(argv)
    parameters = {"profile": args.profile, "run_dir": str(args.run)}
    if args.brats:
        parameters["brats_dir"] = args.brats
    if args.nfbs:
        parameters["nfbs_dir"] = args.nfbs
    with signals_interrupt():
        try:
            notebooks = notebook_paths(args.notebooks)
            if not notebooks:
                raise KitInputError(
                    f"There is no notebook NN_*.ipynb in '{args.notebooks}'; pass --notebooks DIR with the kit's "
                    "notebooks/ or a student edition."
                )
            return run_notebooks(parameters, args.run, notebooks)
        except Interrupted as stop:  # between notebooks (the report, the summary): nothing to resume but the run
            print(f"stopped by {stop}; run the same command again to finish the run.", file=sys.stderr)
            return 128 + stop.signum
        except KitInputError as exc:  # bad input (a profile's unknown setting, ...): the sentence alone, as in `ganet`
            print(f"error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
