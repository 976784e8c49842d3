"""`ganet grade`: a class's notebooks graded exercise by exercise; the student's code only computes.

SUBMISSIONS holds one folder per student with the notebooks of the student edition (`04_*.ipynb`,
...; some may be missing). Who does what:

- **This process (the judge)** reads each notebook as data (regular files inside the student's own
  folder only: links, FIFOs and devices are a row naming them; a size cap before parsing), finds each
  exercise's cell (nbgrader's `grade_id` first, then its first line `# Exercise 04.1:`), draws the
  hidden inputs, computes the references and their gradients itself, and decides every outcome.
- **A sandbox per student** (`sandbox.py`, started under bubblewrap) receives the cell, the import
  lines above it and the inputs, and sends back what the function returned (plain data against a
  schema). It sees an allow-list of the file system: the interpreter, its packages, a private
  `/tmp`; not the kit (so not its references), the home folder, the submissions or the outputs, and
  a minimal environment, no network. Each exercise runs in a process of its own forked there, which
  cannot start processes (seccomp) and has limits on memory, CPU time and file size.

Nothing the sandbox prints or writes is read as a grade: a reply that is late, malformed or for
another request costs that exercise (`timed out` / `error`), and the sandbox is started afresh for the
next one. Hidden inputs come from a secret of the grading run (`--secret FILE`, else a new one kept
beside the grades for the teacher), different for every student and exercise.

Outcomes: passed, failed, not attempted, timed out, error (the cell itself did not run, or the file
is unreadable), missing (no notebook, or the exercise is not in it).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import hmac
import html
import importlib.util
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_file
from ganet_lib.teaching import exercises, sandbox
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
SCRATCH_SIZE = 64 * 2**20  # the sandbox's private /tmp (tmpfs: counts against the machine's memory)
SHM_SIZE = 8 * 2**20  # its /dev/shm
NOTEBOOK_LIMIT = 32 * 2**20  # bytes of one notebook read before parsing
SOURCE_LIMIT = 2**20  # characters of one exercise cell
STDERR_KEPT = 64 * 2**10  # bytes of the sandbox's stderr kept by this process; the rest is read and dropped
START_TIMEOUT_S = 180  # importing torch in a fresh sandbox on a loaded machine
RESTARTS = 3  # fresh sandboxes one student's submission may cost before its remaining exercises are errors
WORKER = Path(sandbox.__file__).resolve()
WORKER_IN_SANDBOX = "/ganet-grader/sandbox.py"


@dataclass(frozen=True)
class Grade:
    student: str
    exercise: str
    outcome: str
    points: float
    max_points: float
    message: str
    ran: bool = True  # False where the submission could not be read (a link, not a notebook): no code ran


class GraderUnavailable(RuntimeError):
    """The sandbox cannot run the grading interpreter here: one sentence says why."""


# --- the sandbox's command ---------------------------------------------------------------------------------


def _within(path: Path, folders) -> bool:
    return any(path == f or path.is_relative_to(f) for f in folders)


def python_folders() -> list[Path]:
    """The folders the grading interpreter needs: its installation and the virtual environment's."""
    folders = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parents[1]}
    return sorted(f for f in folders if not any(f != g and f.is_relative_to(g) for g in folders))


def kit_folders() -> list[Path]:
    """Where the kit's package can be imported from (to be hidden wherever a bound folder holds it)."""
    spec = importlib.util.find_spec("ganet_lib")
    found = {PACKAGE_DIR}
    if spec is not None and spec.submodule_search_locations:
        found |= {Path(p).resolve() for p in spec.submodule_search_locations}
    return sorted(found)


@dataclass(frozen=True)
class Isolation:
    name: str  # "bubblewrap" or "unconfined"
    description: str  # one sentence for the log

    def command(self, hidden: tuple[Path, ...] = ()) -> list[str]:
        """The command line that starts the worker: under bubblewrap with an allow-list of folders, or
        unconfined. `hidden`: folders to cover with an empty one should a bound folder hold them."""
        python = [sys.executable, "-I", "-X", "utf8"]
        if self.name == "unconfined":
            return python + [str(WORKER)]
        # bwrap found on the teacher's PATH, then started with the minimal environment (its own
        # environment is readable inside the sandbox, as /proc/1/environ).
        command = [
            shutil.which("bwrap") or "bwrap",
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--clearenv",
        ]
        for variable, value in _minimal_environment().items():
            command += ["--setenv", variable, value]
        for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                command += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                command += ["--ro-bind", top, top]
        command += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        command += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_SIZE), "--tmpfs", "/dev/shm"]
        command += ["--size", str(SCRATCH_SIZE), "--tmpfs", "/tmp"]
        bound = python_folders()
        for folder in bound:  # after /tmp's tmpfs, so that a Python under /tmp is bound back
            command += ["--ro-bind", str(folder), str(folder)]
        for folder in sorted({*kit_folders(), *hidden}):
            if _within(folder, bound) and folder.exists():
                command += ["--tmpfs", str(folder)]  # an empty folder over it
        command += ["--ro-bind", str(WORKER), WORKER_IN_SANDBOX, "--chdir", "/tmp"]
        return command + [python[0], *python[1:], WORKER_IN_SANDBOX]


def _minimal_environment() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
    }


BUBBLEWRAP = Isolation(
    "bubblewrap",
    "bubblewrap: student code sees only the interpreter and its packages (not the kit, your home, the "
    "submissions or the grades), a private /tmp of "
    f"{SCRATCH_SIZE // 2**20} MiB, no network, a minimal environment; it cannot start processes",
)
UNCONFINED = Isolation(
    "unconfined",
    "WARNING: --isolation unconfined: student code runs with your rights, your files and the network, and "
    "can import the kit's own answers; use it only for code you trust",
)


def find_isolation(wanted: str = "auto") -> Isolation:
    """bubblewrap where it works (`auto` or `bubblewrap`), or `unconfined` when asked for by name.

    Raises:
        GraderUnavailable: bubblewrap is missing or does not work here, with the fix.
    """
    if wanted == "unconfined":
        return UNCONFINED
    if wanted not in ("auto", "bubblewrap"):
        raise GraderUnavailable(
            f"--isolation {wanted} does not confine the file system, so it is no longer offered; install Debian's "
            "bubblewrap (apt-get install bubblewrap) or, for code you trust, use --isolation unconfined."
        )
    if shutil.which("bwrap") is None:
        raise GraderUnavailable(
            "bubblewrap (bwrap) is not installed, and student code is not run without it; install it "
            "(Debian/Ubuntu: apt-get install bubblewrap), or grade code you trust with --isolation unconfined."
        )
    return BUBBLEWRAP


# --- the sandbox, seen from here ------------------------------------------------------------------------------


class SandboxBroken(Exception):
    """The sandbox stopped answering as the protocol says; `outcome` is what it costs the exercise."""

    def __init__(self, outcome: str, message: str):
        super().__init__(message)
        self.outcome = outcome


class Sandbox:
    """One worker process under the isolation; `ask` sends one exercise and returns its reply."""

    def __init__(self, isolation: Isolation, hidden: tuple[Path, ...] = ()):
        self.command = isolation.command(hidden)
        self.process: subprocess.Popen | None = None
        self.stderr_head = bytearray()

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killed whole at a deadline
            env=_minimal_environment(),
            cwd="/",
        )
        threading.Thread(target=self._drain_stderr, args=(self.process.stderr,), daemon=True).start()
        try:
            ready = sandbox.loads(self._receive(time.monotonic() + START_TIMEOUT_S) or b"null")
        except (SandboxBroken, sandbox.CodecError) as exc:
            self.stop()
            raise GraderUnavailable(self._why_not_started(str(exc))) from None
        if not (isinstance(ready, dict) and ready.get("ready") is True):
            self.stop()
            raise GraderUnavailable(self._why_not_started("it did not say it was ready"))

    def _why_not_started(self, what: str) -> str:
        time.sleep(0.2)  # the stderr thread's last lines
        said = bytes(self.stderr_head).decode(errors="replace").strip().splitlines()
        last = said[-1][:300] if said else what
        return (
            f"the grading interpreter {sys.executable} did not start inside the sandbox ({last}); "
            "run `ganet grade` with --isolation unconfined only for code you trust, or report this"
        )

    def _drain_stderr(self, stream) -> None:
        """Keep the first STDERR_KEPT bytes of the sandbox's stderr, read and drop the rest."""
        for chunk in iter(lambda: stream.read1(65536), b""):
            if len(self.stderr_head) < STDERR_KEPT:
                self.stderr_head += chunk[: STDERR_KEPT - len(self.stderr_head)]

    def _receive(self, deadline: float) -> bytes | None:
        try:
            raw = sandbox.receive_raw(self.process.stdout.fileno(), deadline)
        except TimeoutError:
            raise SandboxBroken(TIMED_OUT, "no reply before the deadline") from None
        except sandbox.CodecError as exc:
            raise SandboxBroken(ERROR, f"a reply outside the protocol ({exc})") from None
        if raw is None:
            raise SandboxBroken(ERROR, "the sandbox's worker ended")
        return raw

    def ask(self, request: dict, deadline_s: float) -> tuple[dict, bytes]:
        """(meta, payload) of one request; SandboxBroken when the reply is late, malformed or not for it."""
        if self.process is None:
            self.start()
        request = {**request, "nonce": secrets.token_hex(16)}
        try:
            sandbox.send(self.process.stdin.fileno(), request)
        except OSError:
            raise SandboxBroken(ERROR, "the sandbox's worker stopped reading") from None
        deadline = time.monotonic() + deadline_s
        try:
            meta = sandbox.loads(self._receive(deadline))
        except sandbox.CodecError as exc:
            raise SandboxBroken(ERROR, f"a reply outside the protocol ({exc})") from None
        payload = self._receive(deadline)
        if not isinstance(meta, dict) or meta.get("nonce") != request["nonce"]:
            raise SandboxBroken(ERROR, "a reply that was not for this request")
        return meta, payload

    def stop(self) -> None:
        """Kill the whole tree (stopped processes included): bwrap and, with it, its PID namespace."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()
        self.process = None


# --- what a submission holds ---------------------------------------------------------------------------------


def _imports(source: str) -> list[str]:
    """The top-level import statements of a cell (what the exercise cells below it may rely on)."""
    try:
        tree = ast.parse(source)
        return [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []


@dataclass(frozen=True)
class ExerciseCell:
    source: str
    imports: list[str]
    note: str = ""  # which cell was graded, when several claim the exercise


def exercise_sources(notebook: dict) -> dict[str, ExerciseCell]:
    """Exercise key -> its cell: the cell whose nbgrader `grade_id` is `ex04_1` first, else the first cell
    whose first line is `# Exercise 04.1: ...` (a student may lose the metadata), with the import lines of
    every code cell above it. Cells that are not well-formed code cells are skipped."""
    by_id, by_header, imports_above = {}, {}, []
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if not (isinstance(source, str) or isinstance(source, list) and all(isinstance(s, str) for s in source)):
            continue
        source = cell_source(cell)[:SOURCE_LIMIT]
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbgrader = metadata.get("nbgrader") if isinstance(metadata.get("nbgrader"), dict) else {}
        grade_id = nbgrader.get("grade_id")
        found = (number, source, list(imports_above))
        if isinstance(grade_id, str) and grade_id.startswith("ex"):
            by_id.setdefault(grade_id[2:].replace("_", "."), []).append(found)
        key = exercise_key(source)
        if key is not None:
            by_header.setdefault(key, []).append(found)
        imports_above += _imports(source)
    result = {}
    for key in sorted(set(by_id) | set(by_header)):
        claims = by_id.get(key, []) + [
            c for c in by_header.get(key, []) if c[0] not in {n for n, _, _ in by_id.get(key, [])}
        ]
        number, source, imports = claims[0]
        note = ""
        if len(claims) > 1:
            how = "its grade_id" if key in by_id else "its first line"
            others = ", ".join(str(n) for n, _, _ in claims[1:])
            note = f" (graded code cell {number}, found by {how}; code cell(s) {others} also claim exercise {key})"
        result[key] = ExerciseCell(source, imports, note)
    return result


def read_notebook(folder_fd: int, name: str, where: str) -> tuple[dict | None, str]:
    """(the notebook `name` in the open folder, '') or (None, why it cannot be graded): only a regular file,
    never a link, FIFO or device, at most NOTEBOOK_LIMIT bytes, JSON nested no deeper than the parser allows."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder_fd)
    except OSError as exc:
        kind = "a link" if exc.errno in (40, 31) or _is_link(folder_fd, name) else f"unreadable ({exc.strerror})"
        return None, f"'{where}' is {kind}, not a notebook file: hand in the notebook itself."
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"'{where}' is not a regular file (a FIFO, device or folder): hand in the notebook itself."
        if info.st_size > NOTEBOOK_LIMIT:
            size, limit = info.st_size / 2**20, NOTEBOOK_LIMIT // 2**20
            return (
                None,
                f"'{where}' is {size:.0f} MiB, over the {limit} MiB limit; clear its outputs and hand it in again.",
            )
        data = b""
        while len(data) <= NOTEBOOK_LIMIT:
            chunk = os.read(fd, 2**20)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    try:
        notebook = sandbox.loads(data[: NOTEBOOK_LIMIT + 1])
        if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
            raise sandbox.CodecError("no list of cells")
    except sandbox.CodecError as exc:
        return None, f"'{where}' is not a notebook ({exc}); hand in the .ipynb file as JupyterLab saved it."
    return notebook, ""


def _is_link(folder_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=folder_fd).st_mode)
    except OSError:
        return False


# --- the judge -------------------------------------------------------------------------------------------------


def hidden_seed(secret: bytes, student: str, key: str) -> int:
    """The seed of one student's hidden inputs for one exercise: HMAC-SHA256 of the run's secret."""
    digest = hmac.new(secret, f"{student}\0{key}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def _request(key: str, cell: ExerciseCell, cases: list[exercises.CheckCase], timeout: int, memory_mb: int) -> dict:
    exercise = EXERCISES[key]
    return {
        "key": key,
        "name": exercise.name,
        "source": cell.source,
        "imports": cell.imports,
        "calls": [
            {
                "args": sandbox.encode(case.args),
                "positions": list(exercise.gradient_args) if case.upstream is not None else [],
                "upstream": None if case.upstream is None else sandbox.encode(case.upstream),
            }
            for case in cases
        ],
        "time_limit": timeout,
        "memory_bytes": memory_mb * 2**20,
    }


KIT_NOTE = (
    " The kit's library is not available when grading (nor are its answers): write the exercise with numpy, scipy "
    "and torch."
)


def judge_reply(
    key: str, cases: list[exercises.CheckCase], meta: dict, payload: bytes, timeout: int
) -> tuple[str, str]:
    """The outcome of one exercise from the sandbox's reply, decided here against `cases`; a reply that
    breaks the judging in a way not foreseen costs this exercise only."""
    try:
        return _judge_reply(key, cases, meta=meta, payload=payload, timeout=timeout)
    except Exception as exc:  # the reply is the student's data: the last resort
        return ERROR, f"its reply could not be judged ({type(exc).__name__}: {_short(str(exc), 200)})."


def _judge_reply(
    key: str, cases: list[exercises.CheckCase], meta: dict, payload: bytes, timeout: int
) -> tuple[str, str]:
    exercise = EXERCISES[key]
    if meta.get("status") == "timed out":
        return TIMED_OUT, f"stopped after the {timeout} s time limit; a loop that never ends?"
    if meta.get("status") == "too large":
        return ERROR, f"its reply was larger than {sandbox.MAX_FRAME // 2**20} MiB."
    limit_note = (
        f" (its output reached the {sandbox.OUTPUT_LIMIT // 2**20} MiB limit and was cut)"
        if isinstance(meta.get("output_bytes"), int) and meta["output_bytes"] >= sandbox.OUTPUT_LIMIT
        else ""
    )
    if not payload:
        number = meta.get("signal") if isinstance(meta.get("signal"), int) else 0
        why = (
            "the memory limit or the CPU time limit?"
            if number in (signal.SIGKILL, signal.SIGXCPU, signal.SIGSEGV)
            else "it ended without a reply"
        )
        return (
            ERROR,
            f"the exercise's process died ({f'signal {number}' if number else 'no signal'}; {why}){limit_note}.",
        )
    try:
        reply = sandbox.loads(payload)
        if not isinstance(reply, dict):
            raise sandbox.CodecError("not an object")
        cell = reply.get("cell")
        failed_imports = reply.get("failed_imports") if isinstance(reply.get("failed_imports"), list) else []
        kit_missing = any(isinstance(line, str) and "ganet_lib" in line for line in failed_imports[:20])
        if cell == "syntax error":
            return (
                ERROR,
                f"syntax error on line {_number(reply.get('line'))} of the cell: {_text(reply.get('message'))}.",
            )
        if cell == "raised":
            raised, text = _text(reply.get("type"), 80), _text(reply.get("message"))
            note = (
                KIT_NOTE
                if raised in ("NameError", "ModuleNotFoundError", "ImportError")
                and (kit_missing or "ganet_lib" in text)
                else ""
            )
            return ERROR, f"the cell raised {raised}: «{text}»{_text(reply.get('line'))}.{note}"
        if cell == "no function":
            return ERROR, f"the cell defines no function {exercise.name}."
        if cell != "ran" or not isinstance(reply.get("answers"), list):
            return ERROR, f"the exercise's process gave no answers ({_text(reply.get('message'), 200) or 'no reason'})."
        answers = [sandbox.Answer.from_wire(a) for a in reply["answers"][: len(cases)]]
    except sandbox.CodecError as exc:
        return ERROR, f"its reply could not be read as plain data ({exc})."
    if len(answers) < len(cases):
        return ERROR, f"it answered {len(answers)} of {len(cases)} inputs."
    outcome, message = exercises.judge(exercise, cases, answers)
    if outcome == exercises.FAILED and kit_missing and any(a.raised == "NameError" for a in answers):
        message += KIT_NOTE
    outcome = {exercises.PASSED: PASSED, exercises.NOT_ATTEMPTED: NOT_ATTEMPTED}.get(outcome, FAILED)
    return outcome, message.replace(" See the hint below the exercise.", "") + limit_note


def _text(value, limit: int = 600) -> str:
    return _short(value, limit) if isinstance(value, str) else ""


def _number(value) -> int:
    return value if type(value) is int else 0


def _short(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def grade_student(
    folder: Path,
    exercise_points: dict[str, float],
    *,
    isolation: Isolation,
    timeout: int,
    memory_mb: int,
    secret: bytes,
    hidden: tuple[Path, ...] = (),
) -> list[Grade]:
    """Every exercise of one student's folder; never raises for what the folder holds."""
    student, grades, cells, unread = folder.name, {}, {}, set()
    by_notebook: dict[str, list[str]] = {}
    for key in exercise_points:
        by_notebook.setdefault(key.split(".")[0], []).append(key)
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        why = f"'{student}' is a link or not a folder: hand in a folder of your own notebooks, not a link to one."
        return [
            Grade(student, key, outcome=ERROR, points=0.0, max_points=points, message=why, ran=False)
            for key, points in exercise_points.items()
        ]
    try:
        names = sorted(os.listdir(folder_fd))
        for prefix, keys in by_notebook.items():
            candidates = [n for n in names if n.startswith(f"{prefix}_") and n.endswith(".ipynb")]
            if not candidates:
                held = [n for n in names if n.endswith(".ipynb")]
                why = (
                    f"no {prefix}_*.ipynb in '{student}/' (it holds {', '.join(held[:4])})."
                    if held
                    else f"'{student}/' holds no notebook (.ipynb); hand in the student edition's notebooks."
                )
                grades.update({key: (MISSING, why) for key in keys})
                continue
            notebook, why = read_notebook(folder_fd, candidates[0], f"{student}/{candidates[0]}")
            if notebook is None:
                grades.update({key: (ERROR, why) for key in keys})
                unread.update(keys)
                continue
            found = exercise_sources(notebook)
            for key in keys:
                if key in found:
                    cells[key] = found[key]
                else:
                    grades[key] = (
                        MISSING,
                        f"exercise {key} is not in '{student}/{candidates[0]}' (its cell starts '# Exercise {key}:'); "
                        "a notebook from another version of the kit? Hand in the current student edition.",
                    )
    finally:
        os.close(folder_fd)
    if cells:
        grades.update(
            _grade_cells(
                student, cells, isolation=isolation, timeout=timeout, memory_mb=memory_mb, secret=secret, hidden=hidden
            )
        )
    return [
        Grade(
            student,
            key,
            outcome=grades[key][0],
            points=points if grades[key][0] == PASSED else 0.0,
            max_points=points,
            message=_short(grades[key][1], 1000),
            ran=key not in unread,
        )
        for key, points in exercise_points.items()
    ]


def _grade_cells(
    student: str,
    cells: dict[str, ExerciseCell],
    *,
    isolation: Isolation,
    timeout: int,
    memory_mb: int,
    secret: bytes,
    hidden,
) -> dict[str, tuple[str, str]]:
    box, results, restarts = Sandbox(isolation, hidden), {}, 0
    try:
        for key, cell in cells.items():
            if restarts > RESTARTS:
                results[key] = (ERROR, f"not run: this submission's code broke the grading sandbox {RESTARTS} times.")
                continue
            exercise = EXERCISES[key]
            cases = exercises.check_cases(exercise, HIDDEN_CASES, hidden_seed(secret, student, key))
            try:
                meta, payload = box.ask(
                    _request(key, cell, cases=cases, timeout=timeout, memory_mb=memory_mb), deadline_s=timeout + 15
                )
                outcome, message = judge_reply(key, cases, meta=meta, payload=payload, timeout=timeout)
            except SandboxBroken as exc:
                box.stop()  # the next exercise starts a fresh sandbox
                restarts += 1
                outcome = exc.outcome
                message = (
                    f"stopped after the {timeout} s time limit; a loop, or a stopped process?"
                    if exc.outcome == TIMED_OUT
                    else f"the grading sandbox failed during this exercise: {exc}."
                )
            results[key] = (outcome, message + cell.note)
    finally:
        box.stop()
    return results


def feedback_text(student: str, grades: list[Grade]) -> str:
    """A student's feedback page (Markdown, with whatever a student wrote escaped)."""
    got, total = sum(g.points for g in grades), sum(g.max_points for g in grades)
    lines = [f"# Feedback for {_markdown(student)}", "", f"{got:g} of {total:g} points.", ""]
    lines += [f"- **{g.exercise}** {g.outcome} ({g.points:g}/{g.max_points:g}): {_markdown(g.message)}" for g in grades]
    lines += [
        "",
        f"Each exercise was checked on the cases worked out by hand in its notebook and on {HIDDEN_CASES} random "
        "inputs drawn for you alone, against the kit's reference; a random input that failed was rerun made simpler "
        "in one respect, to say what differs.",
    ]
    return "\n".join(lines) + "\n"


def _markdown(text: str) -> str:
    """Text a student controls, safe in Markdown: HTML escaped, no links or images."""
    return html.escape(text, quote=False).replace("[", "\\[").replace("]", "\\]")


def spreadsheet_safe(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP, CSV injection): a leading quote before
    =, +, -, @, a tab or a carriage return."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def exercise_points() -> dict[str, float]:
    """Exercise key -> its points, in the notebooks' order."""
    return {key: exercise.points for key, exercise in sorted(EXERCISES.items())}


# The known answers the start-up check grades inside the sandbox: a numpy exercise, and a torch one
# with its gradient. Under bubblewrap the first cell also proves that the kit is not importable there.
KNOWN_ANSWERS = {
    "06.3": (
        "def lesion_wise_dice(lesion_dices, false_positives):\n"
        "    n = len(lesion_dices) + false_positives\n    return 1.0 if n == 0 else sum(lesion_dices) / n\n"
    ),
    "04.2": (
        "import torch\nimport torch.nn.functional as F\n"
        "def l_adv(logits, edges):\n    return (edges * F.softplus(-logits)).sum() / edges.sum().clamp(min=1e-6)\n"
    ),
}
KIT_PROBE = (
    "try:\n    import ganet_lib\nexcept ImportError:\n    pass\n"
    "else:\n    raise RuntimeError('the kit is importable in the sandbox')\n"
)


def preflight(isolation: Isolation, hidden: tuple[Path, ...] = ()) -> float:
    """Grade the known answers inside the sandbox before any student; returns the seconds it took.

    Raises:
        GraderUnavailable: the sandbox does not start or does not pass them, with the cause.
    """
    started = time.monotonic()
    probe = "" if isolation.name == "unconfined" else KIT_PROBE
    cells = {key: ExerciseCell(probe + source, []) for key, source in KNOWN_ANSWERS.items()}
    box = Sandbox(isolation, hidden)
    try:
        box.start()
        for key, cell in cells.items():
            cases = exercises.check_cases(EXERCISES[key], HIDDEN_CASES, 0)
            try:
                meta, payload = box.ask(_request(key, cell, cases=cases, timeout=60, memory_mb=4096), deadline_s=90)
            except SandboxBroken as exc:
                raise GraderUnavailable(f"the sandbox broke on a known answer to exercise {key}: {exc}") from None
            outcome, message = judge_reply(key, cases, meta=meta, payload=payload, timeout=60)
            confined = isolation.name == "unconfined" or (payload and sandbox.loads(payload).get("confined") is True)
            if outcome == PASSED and not confined:
                raise GraderUnavailable(
                    "the seccomp filter that stops student code from starting processes could not be installed on this "
                    f"machine ({sys.platform}, {os.uname().machine})"
                )
            if outcome != PASSED:
                raise GraderUnavailable(
                    f"a known answer to exercise {key} was not graded 'passed' inside the sandbox ({outcome}: "
                    f"{_short(message, 300)})"
                )
    finally:
        box.stop()
    return time.monotonic() - started


def load_secret(path: Path | None, out_csv: Path) -> tuple[bytes, Path]:
    """The grading run's secret: read from `path`, or made anew and kept beside the grades (mode 600)."""
    if path is not None:
        try:
            text = path.read_text().strip()
            secret = bytes.fromhex(text)
        except (OSError, ValueError):
            raise KitInputError(
                f"'{path}' is not a grading secret (one line of hexadecimal, as `ganet grade` writes it); give the "
                "file an earlier grading run wrote, or leave --secret out for a new one."
            ) from None
        return secret, path
    secret = secrets.token_bytes(32)
    kept = out_csv.with_suffix(".secret")
    kept.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(kept) as partial:
        partial.write_text(secret.hex() + "\n")
        partial.chmod(0o600)
    return secret, kept


def grade_class(
    submissions: Path,
    out_csv: Path,
    *,
    feedback_dir: Path,
    exercise_points: dict[str, float],
    isolation: Isolation,
    secret: bytes,
    timeout: int = 60,
    memory_mb: int = 4096,
    workers: int = 2,
    progress=None,
) -> list[Grade]:
    """Grade every student folder of `submissions` into `out_csv` and one feedback file per student
    in `feedback_dir` (each written whole, through a temporary name); returns the grades."""
    students = student_folders(submissions)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    feedback_dir.mkdir(parents=True, exist_ok=True)
    hidden = tuple(p.resolve() for p in (submissions, out_csv.parent, feedback_dir))
    torch.set_num_threads(1)  # the references are small; the threads grade students side by side

    def one(folder: Path) -> list[Grade]:
        try:
            grades = grade_student(
                folder,
                exercise_points,
                isolation=isolation,
                timeout=timeout,
                memory_mb=memory_mb,
                secret=secret,
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
                    message=f"the grader failed: {type(exc).__name__}: {_short(str(exc), 200)}",
                )
                for key, points in exercise_points.items()
            ]
        with atomic_file(feedback_dir / f"{folder.name}.md") as partial:
            partial.write_text(feedback_text(folder.name, grades))
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
                writer.writerow(
                    (
                        spreadsheet_safe(g.student),
                        g.exercise,
                        g.outcome,
                        f"{g.points:g}",
                        f"{g.max_points:g}",
                        spreadsheet_safe(g.message),
                    )
                )
    return grades


def student_folders(submissions: Path) -> list[Path]:
    """The entries of `submissions` that are students: folders and links (a link is graded as one row
    naming it, never followed), not hidden names or plain files."""
    return sorted(
        p
        for p in submissions.iterdir()
        if not p.name.startswith(".") and (p.is_symlink() or stat.S_ISDIR(os.lstat(p).st_mode))
    )


def broken_everywhere(grades: list[Grade]) -> bool:
    """Every exercise of every student that was run ended in `error`: the grader, not the class. A
    submission that could not be read (links, FIFOs, not JSON) ran nothing, and does not count."""
    ran = [g for g in grades if g.ran and g.outcome != MISSING]
    return bool(ran) and all(g.outcome == ERROR for g in ran)
