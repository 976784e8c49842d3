"""Seconds per student and the teacher's process memory of `ganet grade` on an honest made-up class.

    .venv/bin/python benchmarks/bench_grade.py --students 10 [--against REV] [--students 30]

The class: students alternate between the teacher's notebooks (16 passed), the untouched student
edition (16 not attempted) and an edition with three typical mistakes. `--against REV` grades the
same class with the kit at git revision REV too (a temporary worktree), one after the other in this
run, so the two figures come from the same machine under the same load. Peak memory is the maximum
resident set of the `ganet grade` process tree as wait4 reports it (the largest process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganet_lib.teaching.student import student_notebook  # noqa: E402

MISTAKES = {
    "02.2": "images = np.asarray(images, float)\n    return (images - images.min()) / np.ptp(images)",
    "04.3": "return {name: 1.0 / (norm + eps) for name, norm in norms.items()}",
    "06.1": "return 2.0 * int((prediction & truth).sum()) / (prediction.sum() + truth.sum())",
}


def write_class(folder: Path, students: int) -> None:
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    teacher = {p.name: json.loads(p.read_text()) for p in notebooks}
    edition = {name: student_notebook(nb, name)[0] for name, nb in teacher.items()}
    wrong = json.loads(json.dumps(edition))
    for notebook in wrong.values():
        for cell in notebook["cells"]:
            source = "".join(cell["source"])
            for key, body in MISTAKES.items():
                if source.startswith(f"# Exercise {key}:"):
                    lines = source.split("\n")
                    at = next(i for i, line in enumerate(lines) if "raise NotImplementedError" in line)
                    lines[at] = "    " + body
                    cell["source"] = "\n".join(lines)
    for index in range(students):
        home = folder / f"student_{index:02d}"
        home.mkdir(parents=True)
        for name, notebook in (teacher, edition, wrong)[index % 3].items():
            (home / name).write_text(json.dumps(notebook))


def grade(python: str, kit: Path, submissions: Path, out: Path, extra: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, the summary line) of one `ganet grade` run."""
    started = time.monotonic()
    process = subprocess.Popen(
        [python, "-m", "ganet_lib", "grade", str(submissions), "--out", str(out), "--workers", "2", *extra],
        cwd=kit,
        env={**os.environ, "PYTHONPATH": str(kit)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ganet grade at {kit} failed:\n{output[-2000:]}")
    summary = next((line for line in output.splitlines() if line.startswith("graded in")), "")
    return elapsed, usage.ru_maxrss / 1024, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--against", help="a git revision of the kit to grade the same class with, side by side")
    args = parser.parse_args()
    work, old = Path(tempfile.mkdtemp(prefix="bench-grade-")), None
    try:
        write_class(work / "submissions", args.students)
        runs = [("this checkout", ROOT, [])]
        if args.against:
            # Outside /tmp: the old grader's private /tmp hid a kit there (the bug issue 32 fixed).
            (Path.home() / ".cache").mkdir(exist_ok=True)
            old = Path(tempfile.mkdtemp(prefix="ganet-bench-old-", dir=Path.home() / ".cache")) / "kit"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.against],
                check=True,
                capture_output=True,
            )
            runs.append((f"revision {args.against}", old, ["--seed", "7"]))
        print(
            f"{args.students} students x 16 exercises, 2 workers; {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs"
        )
        for label, kit, extra in runs:
            elapsed, peak, summary = grade(sys.executable, kit, work / "submissions", work / f"{kit.name}.csv", extra)
            print(
                f"{label:>22}: {elapsed:6.1f} s in all, {elapsed / args.students:5.2f} s per student, "
                f"peak RSS {peak:6.0f} MB   ({summary})"
            )
    finally:
        if old is not None:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "old-kit")], capture_output=True
            )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
