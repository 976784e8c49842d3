"""`ganet grade`: a class's notebooks graded exercise by exercise, with the student's code confined.

SUBMISSIONS holds one folder per student with the notebooks of the student edition (`04_*.ipynb`,
...; some may be missing). For each student one grading process starts inside the strongest
isolation the machine offers and imports the kit once; each exercise then runs in a process forked
from it, with its own time, memory and file-size limits:

- **bubblewrap** (`bwrap`, Debian's `bubblewrap`): no network, the whole file system read-only,
  the submissions and the output folder hidden, a private `/tmp` of 64 MiB as the working folder;
- **unshare** (util-linux) where bubblewrap is missing: no network and a throwaway working folder,
  but the file system stays writable (the log says so);
- **none**: a warning that student code runs with the grader's rights.

Each exercise's code is its cell (`# Exercise NN.K: ...`) after the import lines of the cells above
it, so a cell that breaks, loops or prints forever costs only that exercise. The check
(`exercises.run_check`) then grades the function on the hand cases and on hidden random inputs drawn
from `seed`, against the kit's reference.

Outcomes: passed, failed, not attempted, timed out, error (the cell itself did not run, or the file
is not a notebook), missing (no notebook, or the exercise is not in it). Nothing a submission does
stops the others.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from ganet_lib.files import atomic_file
from ganet_lib.teaching import exercises
from ganet_lib.teaching.exercises import EXERCISES, HIDDEN_CASES, PACKAGE_DIR
from ganet_lib.teaching.student import cell_source, exercise_key

PASSED, FAILED, NOT_ATTEMPTED, TIMED_OUT, ERROR, MISSING = (
    "passed",
    "failed",
    "not attempted",
    "timed out",
    "error",
    "missing",
)
COLUMNS = ("student", "exercise", "outcome", "points", "max_points", "message")
OUTPUT_LIMIT = 8 * 2**20  # bytes one exercise may print or write into one file
SCRATCH_SIZE = 64 * 2**20  # the private /tmp under bubblewrap


@dataclass(frozen=True)
class Grade:
    student: str
    exercise: str
    outcome: str
    points: float
    max_points: float
    message: str


@dataclass(frozen=True)
class Isolation:
    name: str  # "bubblewrap", "unshare" or "none"
    description: str  # one sentence for the log

    def command(self, scratch: Path, hidden: tuple[Path, ...]) -> list[str]:
        """The prefix that runs a command confined; `scratch` is its working folder (outside
        bubblewrap) and `hidden` the folders it must not see."""
        if self.name == "bubblewrap":
            prefix = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/"]
            prefix += ["--dev", "/dev", "--proc", "/proc", "--size", str(SCRATCH_SIZE), "--tmpfs", "/tmp"]
            for folder in hidden:
                prefix += ["--tmpfs", str(folder)]  # an empty folder over each one
            return prefix + ["--setenv", "HOME", "/tmp", "--chdir", "/tmp"]
        if self.name == "unshare":
            return ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
        return []


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command + ["true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_isolation(wanted: str = "auto") -> Isolation:
    """The strongest isolation that works here (or `wanted`: bubblewrap, unshare, none).

    Raises:
        RuntimeError: `wanted` names one that does not work on this machine.
    """
    bubblewrap = Isolation(
        "bubblewrap",
        "bubblewrap: no network, the file system read-only, the submissions hidden, a private /tmp of "
        f"{SCRATCH_SIZE // 2**20} MiB as the working folder",
    )
    unshare = Isolation(
        "unshare",
        "unshare: no network and a throwaway working folder, but the file system stays writable for student code "
        "(install Debian's bubblewrap to confine it)",
    )
    none = Isolation(
        "none",
        "WARNING: no isolation is available (neither bubblewrap nor unshare works here): student code runs with your "
        "rights, network and file system; only the time, memory and output limits apply",
    )
    checks = {
        "bubblewrap": (bubblewrap, shutil.which("bwrap") and _works(bubblewrap.command(Path("/tmp"), ()))),
        "unshare": (unshare, shutil.which("unshare") and _works(unshare.command(Path("/tmp"), ()))),
    }
    if wanted in checks:
        isolation, works = checks[wanted]
        if not works:
            raise RuntimeError(f"--isolation {wanted}: it does not work on this machine; try --isolation auto.")
        return isolation
    if wanted == "none":
        return none
    return next((isolation for isolation, works in checks.values() if works), none)


# --- what a submission holds ---------------------------------------------------------------------------------


def _imports(source: str) -> list[str]:
    """The top-level import statements of a cell (what the exercise cells below it may rely on)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]


def exercise_sources(notebook: dict) -> dict[str, tuple[str, list[str]]]:
    """Exercise key -> (its cell's source, the import lines of every code cell above it). An exercise
    cell is found by its first line (`# Exercise 04.1: ...`), tagged or not (a student may lose the tag)."""
    found, imports = {}, []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        key = exercise_key(source)
        if key is not None and key not in found:
            found[key] = (source, list(imports))
        imports += _imports(source)
    return found


def read_submission(folder: Path, prefix: str) -> tuple[dict | None, str]:
    """(the notebook whose name starts with `prefix`_ in `folder`, '') or (None, why it cannot be graded)."""
    candidates = sorted(folder.glob(f"{prefix}_*.ipynb"))
    if not candidates:
        held = sorted(p.name for p in folder.glob("*.ipynb"))
        if not held:
            return None, f"'{folder.name}/' holds no notebook (.ipynb); hand in the student edition's notebooks."
        return None, f"no {prefix}_*.ipynb in '{folder.name}/' (it holds {', '.join(held[:4])})."
    path = candidates[0]
    try:
        notebook = json.loads(path.read_text(errors="replace"))
        if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
            raise ValueError("no cells")
    except (ValueError, OSError) as exc:
        return None, (
            f"'{folder.name}/{path.name}' is not a notebook ({type(exc).__name__}: {str(exc)[:80]}); hand in the "
            ".ipynb file as JupyterLab saved it."
        )
    return notebook, ""


# --- inside the sandbox: one process per student, one fork per exercise ---------------------------------------


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of a kill


def _short(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run_exercise(job: dict, key: str, source: str, imports: list[str]) -> dict:
    """In the forked process: the cell, then the check. Returns {outcome, message}."""
    exercise = EXERCISES[key]
    path = Path.cwd() / f"exercise_{key.replace('.', '_')}.py"
    path.write_text(source)  # tracebacks show the student's lines
    namespace: dict = {"__name__": "__exercise__"}
    for line in imports:
        try:
            exec(compile(line, "<imports>", "exec"), namespace)
        except Exception:  # an import that fails here fails the student's code below, where it is named
            pass
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        return {"outcome": ERROR, "message": f"syntax error on line {exc.lineno} of the cell: {exc.msg}."}
    try:
        with exercises.time_limit(exercise.time_limit_s):
            exec(code, namespace)
    except exercises.CheckTimeout:
        return {"outcome": TIMED_OUT, "message": f"the cell ran longer than {exercise.time_limit_s:g} s; a loop?"}
    except Exception as exc:
        where = exercises.student_line(exc)
        return {"outcome": ERROR, "message": f"the cell raised {type(exc).__name__}: {_short(str(exc), 200)}{where}."}
    function = namespace.get(exercise.name)
    if not callable(function):
        return {"outcome": ERROR, "message": f"the cell defines no function {exercise.name}."}
    outcome, message = exercises.run_check(key, function, random_cases=HIDDEN_CASES, seed=job["seed"])
    outcome = {exercises.PASSED: PASSED, exercises.NOT_ATTEMPTED: NOT_ATTEMPTED, exercises.TIMED_OUT: TIMED_OUT}.get(
        outcome, FAILED
    )
    return {"outcome": outcome, "message": message.replace(" See the hint below the exercise.", "")}


def _fork_exercise(job: dict, key: str, source: str, imports: list[str]) -> dict:
    """Run one exercise in a forked process with the limits; its outcome, also when it loops or dies."""
    folder = Path(tempfile.mkdtemp(prefix=f"ex{key.replace('.', '_')}-", dir=job["scratch"]))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the exercise's process
        try:
            os.close(read_end)
            os.chdir(folder)
            _limit(job["memory_bytes"], job["timeout"])
            output = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(output, 1)
            os.dup2(output, 2)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
            sys.stderr = sys.stdout
            result = _run_exercise(job, key, source, imports)
        except BaseException as exc:  # a last resort: the grader reports it instead of losing the exercise
            result = {"outcome": ERROR, "message": f"{type(exc).__name__}: {_short(str(exc), 200)}"}
        if (folder / "output.txt").stat().st_size >= OUTPUT_LIMIT:
            result["message"] += f" (its output reached the {OUTPUT_LIMIT // 2**20} MiB limit and was cut)"
        os.write(write_end, json.dumps(result).encode()[:60_000])
        os._exit(0)
    os.close(write_end)
    deadline, received = time.monotonic() + job["timeout"], b""
    while True:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([read_end], [], [], max(remaining, 0))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            return {"outcome": TIMED_OUT, "message": f"stopped after the {job['timeout']} s time limit; a loop?"}
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        received += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        return json.loads(received)
    except ValueError:
        signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        why = (
            "the memory limit or the CPU time limit?"
            if signal_number in (signal.SIGKILL, signal.SIGXCPU, signal.SIGSEGV)
            else "its process ended without a result"
        )
        return {
            "outcome": ERROR,
            "message": f"the exercise's process died ({'signal ' + str(signal_number) if signal_number else 'exit'}; "
            f"{why}).",
        }


def serve(job: dict) -> dict:
    """The grading process of one student (inside the isolation): every exercise of `job`, each forked
    from this process, which imported torch and the kit once (so each exercise starts in milliseconds)."""
    torch.set_num_threads(1)
    results = {}
    for key, (source, imports) in job["exercises"].items():
        results[key] = _fork_exercise(job, key, source, imports)
    return results


def _main() -> None:
    job = json.loads(sys.stdin.read())
    job["scratch"] = job.get("scratch") or tempfile.gettempdir()
    results = serve(job)
    sys.stdout.write("\nGANET-GRADES " + json.dumps(results) + "\n")


# --- the teacher's side -----------------------------------------------------------------------------------------


def grade_student(
    folder: Path,
    exercise_points: dict[str, float],
    *,
    isolation: Isolation,
    timeout: int,
    memory_mb: int,
    seed: int,
    hidden: tuple[Path, ...],
) -> list[Grade]:
    """Every exercise of one student's folder; never raises for what the folder holds."""
    student, grades, job_exercises = folder.name, {}, {}
    by_notebook: dict[str, list[str]] = {}
    for key in exercise_points:
        by_notebook.setdefault(key.split(".")[0], []).append(key)
    for prefix, keys in by_notebook.items():
        notebook, why = read_submission(folder, prefix)
        if notebook is None:
            outcome = ERROR if "is not a notebook" in why else MISSING
            grades.update({key: (outcome, why) for key in keys})
            continue
        sources = exercise_sources(notebook)
        for key in keys:
            if key in sources:
                job_exercises[key] = sources[key]
            else:
                grades[key] = (
                    MISSING,
                    f"exercise {key} is not in '{folder.name}/{prefix}_*.ipynb' (its cell starts '# Exercise {key}:'); "
                    "a notebook from another version of the kit? Hand in the current student edition.",
                )
    if job_exercises:
        grades.update(
            _grade_in_sandbox(job_exercises, isolation, timeout=timeout, memory_mb=memory_mb, seed=seed, hidden=hidden)
        )
    return [
        Grade(
            student,
            key,
            outcome=grades[key][0],
            points=points if grades[key][0] == PASSED else 0.0,
            max_points=points,
            message=_short(grades[key][1], 1000),
        )
        for key, points in exercise_points.items()
    ]


def _grade_in_sandbox(
    job_exercises: dict, isolation: Isolation, *, timeout: int, memory_mb: int, seed: int, hidden: tuple[Path, ...]
) -> dict[str, tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="ganet-grade-") as scratch:
        job = {
            "exercises": job_exercises,
            "seed": seed,
            "timeout": timeout,
            "memory_bytes": memory_mb * 2**20,
            "scratch": "/tmp" if isolation.name == "bubblewrap" else scratch,
        }
        command = isolation.command(Path(scratch), hidden) + [sys.executable, "-m", "ganet_lib.teaching.grade"]
        budget = len(job_exercises) * (timeout + 5) + 60  # each exercise has its own limit; this is a backstop
        try:
            process = subprocess.run(
                command,
                input=json.dumps(job),
                capture_output=True,
                text=True,
                timeout=budget,
                cwd=scratch,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
        except subprocess.TimeoutExpired:
            return {key: (TIMED_OUT, f"the grading process ran past {budget} s") for key in job_exercises}
        marker = process.stdout.rfind("GANET-GRADES ")
        if marker < 0:
            why = _short(process.stderr.strip().splitlines()[-1] if process.stderr.strip() else "", 300)
            return {
                key: (ERROR, f"the grading process ended without results (exit {process.returncode}): {why}")
                for key in job_exercises
            }
        results = json.loads(process.stdout[marker + len("GANET-GRADES ") :].strip())
        return {key: (results[key]["outcome"], results[key]["message"]) for key in job_exercises}


def feedback_text(student: str, grades: list[Grade], seed: int) -> str:
    """A student's feedback: points, then one line per exercise."""
    got, total = sum(g.points for g in grades), sum(g.max_points for g in grades)
    lines = [f"# Feedback for {student}", "", f"{got:g} of {total:g} points.", ""]
    lines += [f"- **{g.exercise}** {g.outcome} ({g.points:g}/{g.max_points:g}): {g.message}" for g in grades]
    lines += [
        "",
        f"Each exercise was checked on the cases worked out by hand in its notebook and on {HIDDEN_CASES} random "
        f"inputs you had not seen (seed {seed}), against the kit's reference.",
    ]
    return "\n".join(lines) + "\n"


def hidden_folders(folders: tuple[Path, ...]) -> tuple[Path, ...]:
    """The folders student code must not see (other submissions, the grades), less any that holds the kit
    or Python itself (hiding those would stop the grader)."""
    needed = [PACKAGE_DIR, Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve()]
    folders = {p.resolve() for p in folders}
    return tuple(
        sorted(p for p in folders if not any(n.resolve() == p or n.resolve().is_relative_to(p) for n in needed))
    )


def exercise_points() -> dict[str, float]:
    """Exercise key -> its points, in the notebooks' order."""
    return {key: exercise.points for key, exercise in sorted(EXERCISES.items())}


def grade_class(
    submissions: Path,
    out_csv: Path,
    *,
    feedback_dir: Path,
    exercise_points: dict[str, float],
    isolation: Isolation,
    timeout: int = 60,
    memory_mb: int = 4096,
    seed: int = 0,
    workers: int = 2,
    progress=None,
) -> list[Grade]:
    """Grade every student folder of `submissions` into `out_csv` and one feedback file per student
    in `feedback_dir` (each written whole, through a temporary name); returns the grades."""
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    feedback_dir.mkdir(parents=True, exist_ok=True)
    hidden = hidden_folders((submissions, out_csv.parent, feedback_dir))

    def one(folder: Path) -> list[Grade]:
        try:
            grades = grade_student(
                folder,
                exercise_points,
                isolation=isolation,
                timeout=timeout,
                memory_mb=memory_mb,
                seed=seed,
                hidden=hidden,
            )
        except Exception as exc:  # a bug of the grader's own: the student's row says so, the class goes on
            grades = [
                Grade(
                    folder.name,
                    key,
                    outcome=ERROR,
                    points=0.0,
                    max_points=points,
                    message=f"the grader failed: {type(exc).__name__}: {exc}",
                )
                for key, points in exercise_points.items()
            ]
        feedback_dir.mkdir(parents=True, exist_ok=True)
        with atomic_file(feedback_dir / f"{folder.name}.md") as partial:
            partial.write_text(feedback_text(folder.name, grades, seed))
        if progress is not None:
            progress.update(1)
        return grades

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        grades = [grade for student_grades in pool.map(one, students) for grade in student_grades]
    with atomic_file(out_csv) as partial:
        with partial.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for g in grades:
                writer.writerow((g.student, g.exercise, g.outcome, f"{g.points:g}", f"{g.max_points:g}", g.message))
    return grades


if __name__ == "__main__":
    _main()
