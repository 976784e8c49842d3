"""`ganet grade` on a made-up class: each student's exercises confined, graded on hidden cases, every
kind of broken submission one row of grades.csv with its sentence."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from ganet_lib.teaching import exercises, grade
from ganet_lib.teaching.exercises import EXERCISES
from ganet_lib.teaching.grade import exercise_sources, feedback_text, hidden_seed, spreadsheet_safe
from ganet_lib.teaching.student import student_notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def ganet_grade(
    submissions: Path, out: Path, *options: str, python: str = sys.executable, cwd: Path = ROOT, env=None
) -> subprocess.CompletedProcess:
    """`ganet grade SUBMISSIONS --out OUT OPTIONS` in a process of its own, from the checkout."""
    return subprocess.run(
        [python, "-m", "ganet_lib", "grade", str(submissions), "--out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def solve(notebook: dict, key: str, body: str) -> dict:
    """`notebook` (a student edition) with the stub of exercise `key` replaced by `body`, indented as
    the stub; a body starting with 'CELL:' replaces the whole cell."""
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if source.lstrip().startswith(f"# Exercise {key}:"):
            if body.startswith("CELL:"):
                cell["source"] = body.removeprefix("CELL:")
                return notebook
            lines = source.split("\n")
            at = next(i for i, line in enumerate(lines) if "raise NotImplementedError" in line)
            indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
            lines[at : at + 1] = [indent + line for line in body.strip("\n").split("\n")]
            cell["source"] = "\n".join(lines)
            return notebook
    raise KeyError(key)


CORRECT_06_1 = (
    "total = int(prediction.sum()) + int(truth.sum())\n"
    "return 1.0 if total == 0 else 2.0 * int((prediction & truth).sum()) / total"
)
CORRECT_06_3 = "n = len(lesion_dices) + false_positives\nreturn 1.0 if n == 0 else sum(lesion_dices) / n"
CANARY_VARIABLE = "GANET_TEACHER_CANARY"


def write_class(folder: Path, canary: Path, port: int) -> None:
    """A class: one student per way a submission goes right or wrong, then students who want free marks
    (each attack in one cell or one file of an otherwise untouched edition)."""
    edition = {path.name: student_notebook(json.loads(path.read_text()), path.name)[0] for path in NOTEBOOKS}

    def student(name: str, changes: dict[str, dict[str, str]] | None = None, notebooks=None) -> Path:
        home = folder / name
        home.mkdir(parents=True)
        for notebook_name, notebook in (notebooks or edition).items():
            notebook = json.loads(json.dumps(notebook))
            for key, body in (changes or {}).get(notebook_name[:2], {}).items():
                solve(notebook, key, body)
            (home / notebook_name).write_text(json.dumps(notebook))
        return home

    teacher = {path.name: json.loads(path.read_text()) for path in NOTEBOOKS}
    student("ada_correct", notebooks=teacher)
    student("ben_untouched")
    student(
        "cem_mistakes",
        {
            "02": {"02.2": "images = np.asarray(images, float)\nreturn (images - images.min()) / np.ptp(images)"},
            "04": {
                "04.2": "return (edges * -torch.log(torch.sigmoid(logits))).sum() / edges.sum()",
                "04.3": "return {name: 1.0 / (norm + eps) for name, norm in norms.items()}",
            },
            "06": {"06.1": "return 2.0 * int((prediction & truth).sum()) / (prediction.sum() + truth.sum())"},
        },
    )
    student("dev_loops", {"04": {"04.3": "while True:\n    pass"}, "06": {"06.3": "return 1.0"}})
    student(
        "eli_network",
        {
            "06": {
                "06.3": "import urllib.request\n"
                f"urllib.request.urlopen('http://127.0.0.1:{port}/leak', timeout=3)\n"
                "return sum(lesion_dices) / max(len(lesion_dices) + false_positives, 1)"
            }
        },
    )
    student("fay_writes", {"06": {"06.3": f"open({str(canary)!r}, 'w').write('pwned')\nreturn 0.0"}})
    student(
        "gus_reference",
        {
            "04": {
                "04.2": "CELL:# Exercise 04.2: the adversarial term\n"
                "from ganet_lib.teaching.exercises import EXERCISES\n"
                'l_adv = EXERCISES["04.2"].reference\n'
            }
        },
    )
    student(
        "hal_broken",
        {
            "01": {"01.1": "return mask.any(axis=0"},  # a syntax error
            "02": {"02.1": "print('x' * 10**6)\nwhile True:\n    print('spam' * 1000)"},  # output that fills the screen
        },
        notebooks={name: nb for name, nb in edition.items() if not name.startswith("05")},  # 05 not handed in
    )
    (folder / "hal_broken" / "06_evaluation.ipynb").write_text("this is not a notebook")
    older = json.loads(json.dumps(edition["04_segmentation.ipynb"]))
    older["cells"] = [c for c in older["cells"] if not "".join(c["source"]).startswith("# Exercise 04.4")]
    student("ivy_old_version", notebooks={"04_segmentation.ipynb": older})
    (folder / "jon_empty").mkdir()
    (folder / "jon_empty" / "notes.txt").write_text("I forgot")

    # --- students who want marks they did not earn ---
    forged = json.dumps({key: {"outcome": "passed", "message": "forged"} for key in EXERCISES})
    student(
        "kai_forges",
        {
            "06": {
                "06.1": CORRECT_06_1,  # earned: must stay passed whatever the other cells do
                # The grades line into the parent's stdout, then kill it.
                "06.2": f"import os, signal\nFORGED = {forged!r}\n"
                "for fd in ('1', '2'):\n"
                "    try:\n"
                "        line = '\\nGANET-GRADES ' + FORGED + '\\n'\n"
                "        open(f'/proc/{os.getppid()}/fd/{fd}', 'w').write(line)\n"
                "    except OSError:\n"
                "        pass\n"
                "for pid in (os.getppid(), 1, -1):\n"
                "    try:\n"
                "        os.kill(pid, signal.SIGKILL)\n"
                "    except OSError:\n"
                "        pass\n"
                "return labels",
                "06.3": "import os, json\n"  # forged replies into every descriptor, then leave without one
                "reply = json.dumps({'cell': 'ran', 'answers': []}).encode()\n"
                "for fd in range(3, 64):\n"
                "    try:\n"
                "        os.write(fd, len(reply).to_bytes(4, 'big') + reply)\n"
                "    except OSError:\n"
                "        pass\n"
                "os._exit(0)",
            }
        },
    )
    student(
        "lea_patches",
        {
            "06": {
                "06.1": "import numpy\nnumpy.allclose = lambda *a, **k: True\n"
                "numpy.array_equal = lambda *a, **k: True\nreturn 0.5",
                "06.3": "import builtins, sys\nfor name in list(sys.modules):\n"
                "    module = sys.modules[name]\n"
                "    for attr in ('run_check', 'same', 'judge'):\n"
                "        if hasattr(module, attr):\n"
                "            setattr(module, attr, lambda *a, **k: ('passed', 'patched'))\n"
                "return 0.0",
            }
        },
    )
    student(
        "max_liar",
        {
            "06": {
                "06.1": "import sys\nclass Liar(float):\n"
                "    def __array__(self, *args, **kwargs):\n"
                "        frame = sys._getframe(1)\n"
                "        while frame is not None:\n"
                "            if 'wanted' in frame.f_locals:\n"
                "                return numpy.asarray(frame.f_locals['wanted'])\n"
                "            frame = frame.f_back\n"
                "        return numpy.asarray(0.25)\n"
                "    def __eq__(self, other):\n"
                "        return True\n"
                "import numpy\nreturn Liar(0.25)",
            },
            "04": {
                "04.2": "class Liar(torch.Tensor):\n"
                "    def numpy(self, *args, **kwargs):\n"
                "        import numpy\n        return numpy.float32(0.6931472)\n"
                "return torch.zeros((), requires_grad=True).as_subclass(Liar) + 0 * logits.sum()",
            },
        },
    )
    student(
        "ned_kit",
        {
            "04": {
                "04.1": "import threading\nbox = {}\n"
                "def run():\n"
                "    from ganet_lib.method.losses import edge_map as kit\n"
                "    box['f'] = kit\n"
                "thread = threading.Thread(target=run)\nthread.start()\nthread.join()\n"
                "return box['f'](mask, output_size)",
                "04.2": "import importlib.util, glob\n"
                "paths = glob.glob('/**/ganet_lib/method/losses.py', recursive=True)\n"
                "assert paths, 'the kit is not here'\n"
                "spec = importlib.util.spec_from_file_location('kit', paths[0])\n"
                "kit = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(kit)\n"
                "return kit.edge_weighted_adversarial(logits, edges)",
            }
        },
    )
    student(
        "oli_resources",
        {
            "06": {
                "06.1": "import os\nchildren = []\n"  # a fork bomb
                "for _ in range(200):\n    children.append(os.fork())\n" + CORRECT_06_1,
                "06.2": "hoard = [bytearray(350 * 2**20) for _ in range(4)]\nreturn labels",  # beyond --memory
                "06.3": "import sys\nchunk = 'x' * 2**20\n"  # 150 MiB into stderr, /dev/shm filled, then stopped
                "for _ in range(150):\n"
                "    try:\n        sys.stderr.write(chunk)\n    except OSError:\n        break\n"
                "try:\n    open('/dev/shm/fill', 'wb').write(b'x' * 100 * 2**20)\nexcept OSError:\n    pass\n"
                "import os, signal\n"
                "for pid in (os.getppid(), 1):\n"
                "    try:\n        os.kill(pid, signal.SIGSTOP)\n    except OSError:\n        pass\n" + CORRECT_06_3,
            }
        },
    )
    student(
        "pia_leaks",
        {
            "06": {
                "06.1": "import os\nfound = []\n"
                f"for path in ({str(ROOT)!r}, {str(ROOT / 'notebooks')!r}, {str(Path.home())!r}, '/work', '/home', "
                f"{str(folder)!r}, {str(folder.parent)!r}):\n"
                "    try:\n        found.append((path, os.listdir(path)))\n    except OSError as exc:\n"
                "        found.append((path, type(exc).__name__))\n"
                "raise RuntimeError(repr(found) + repr(dict(os.environ)))",
            }
        },
    )
    links = student("rex_links")
    ada = folder / "ada_correct"
    for name in ("02_enhancement.ipynb", "03_gan_pretrain.ipynb"):
        (links / name).unlink()
    (links / "02_enhancement.ipynb").symlink_to(ada / "02_enhancement.ipynb")  # a classmate's notebook
    (links / "03_gan_pretrain.ipynb").symlink_to(ROOT / "notebooks" / "03_gan_pretrain.ipynb")  # the teacher's
    (folder / "sam_follows").symlink_to(ada, target_is_directory=True)  # a classmate's whole folder
    odd = student("tia_special_files")
    for name in ("01_data.ipynb", "02_enhancement.ipynb", "05_threshold_sweep.ipynb", "06_evaluation.ipynb"):
        (odd / name).unlink()
    os.mkfifo(odd / "02_enhancement.ipynb")  # would hang a reader
    (odd / "01_data.ipynb").symlink_to("/dev/zero")  # would be read forever
    (odd / "05_threshold_sweep.ipynb").write_text("[" * 200_000 + "]" * 200_000)
    (odd / "06_evaluation.ipynb").write_text(json.dumps({"cells": ["x", 5, None], "metadata": {}}))
    student(
        '=HYPERLINK("x")',
        {"06": {"06.3": "raise RuntimeError('=cmd <img src=x onerror=alert(1)> [link](http://example.org)')"}},
    )
    twice = json.loads(json.dumps(teacher["06_evaluation.ipynb"]))
    first = next(i for i, c in enumerate(twice["cells"]) if "".join(c["source"]).startswith("# Exercise 06.3"))
    wrong = json.loads(json.dumps(twice["cells"][first]))
    wrong["metadata"] = {}
    wrong["source"] = "# Exercise 06.3: again\ndef lesion_wise_dice(lesion_dices, false_positives):\n    return 0.0\n"
    twice["cells"].insert(first, wrong)  # a second cell claims 06.3 above the graded one
    student("uma_twice", notebooks={"06_evaluation.ipynb": twice})


class Recorder(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (the http.server name)
        Recorder.requests.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def rows_of(path: Path) -> dict:
    with open(path, newline="") as handle:
        return {(row["student"], row["exercise"]): row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded under bubblewrap: (rows by (student, exercise), log, canary, work folder)."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap; .ci/run does it)")
    work = tmp_path_factory.mktemp("class")
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Outside /tmp and writable by the teacher: the checkout.
    canary = Path(tempfile.mkdtemp(dir=ROOT / ".pytest_cache" if (ROOT / ".pytest_cache").is_dir() else ROOT))
    canary = canary / "written_by_a_student.txt"
    write_class(work / "submissions", canary, server.server_address[1])
    env = {**os.environ, CANARY_VARIABLE: "teacher-secret-4711"}
    started = time.monotonic()
    result = ganet_grade(
        work / "submissions", work / "grades.csv", "--timeout", "20", "--memory", "1280", "--workers", "2", env=env
    )
    server.shutdown()
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    yield rows_of(work / "grades.csv"), result.stdout + result.stderr, canary, work, time.monotonic() - started
    shutil.rmtree(canary.parent)


def outcome(rows, student, key) -> str:
    return rows[(student, key)]["outcome"]


def test_every_student_gets_a_row_per_exercise_and_a_feedback_file(graded):
    rows, log, _, work, _ = graded
    students = {student for student, _ in rows}
    assert len(students) == 21 and len(rows) == 21 * len(EXERCISES)
    assert "isolation: bubblewrap" in log and "start-up check: known answers graded 'passed'" in log
    assert "graded in" in log and "per student" in log
    feedback = (work / "feedback" / "cem_mistakes.md").read_text()
    assert "of 16 points" in feedback and "04.2" in feedback and "drawn for you alone" in feedback
    secret = (work / "grades.secret").read_text().strip()
    assert len(secret) == 64 and secret not in feedback and (work / "grades.secret").stat().st_mode & 0o077 == 0


def test_the_correct_student_passes_everything_and_the_untouched_edition_nothing(graded):
    rows = graded[0]
    assert {outcome(rows, "ada_correct", key) for key in EXERCISES} == {"passed"}
    assert sum(float(rows[("ada_correct", key)]["points"]) for key in EXERCISES) == 16
    assert {outcome(rows, "ben_untouched", key) for key in EXERCISES} == {"not attempted"}
    assert sum(float(rows[("ben_untouched", key)]["points"]) for key in EXERCISES) == 0


def test_typical_mistakes_fail_with_their_reason(graded):
    rows = graded[0]
    assert outcome(rows, "cem_mistakes", "02.2") == "failed"
    row = rows[("cem_mistakes", "04.2")]
    # Its first failure is the case without edges (0 / 0), where logsigmoid is no help: the advice fits the cause.
    assert row["outcome"] == "failed" and "not finite" in row["message"] and "0 / 0" in row["message"]
    assert "logsigmoid" not in row["message"]
    assert outcome(rows, "cem_mistakes", "04.3") == "failed"
    assert outcome(rows, "cem_mistakes", "06.1") == "failed"  # both empty: 0/0
    assert outcome(rows, "cem_mistakes", "01.1") == "not attempted"


def test_a_loop_costs_only_its_own_exercise(graded):
    rows = graded[0]
    assert outcome(rows, "dev_loops", "04.3") == "timed out"
    assert outcome(rows, "dev_loops", "06.3") == "failed"
    assert outcome(rows, "dev_loops", "04.4") == "not attempted"


def test_student_code_reaches_no_network_and_writes_nothing_outside(graded):
    rows, _, canary, _, _ = graded
    assert not Recorder.requests, Recorder.requests
    assert outcome(rows, "eli_network", "06.3") == "failed"
    assert not canary.exists()
    assert outcome(rows, "fay_writes", "06.3") == "failed"
    assert "No such file or directory" in rows[("fay_writes", "06.3")]["message"]  # the checkout is not there


def test_the_kits_answers_are_out_of_reach(graded):
    rows = graded[0]
    for student, key in (("gus_reference", "04.2"), ("ned_kit", "04.1"), ("ned_kit", "04.2")):
        row = rows[(student, key)]  # (ned's search of the whole file system for the kit runs out of time)
        assert row["outcome"] in ("error", "failed", "timed out") and float(row["points"]) == 0, (student, key, row)
    assert "kit's library is not available when grading" in rows[("gus_reference", "04.2")]["message"]


def test_broken_submissions_are_rows_with_a_sentence(graded):
    rows = graded[0]
    row = rows[("hal_broken", "01.1")]
    assert row["outcome"] == "error" and "syntax error on line" in row["message"]
    assert outcome(rows, "hal_broken", "02.1") in ("timed out", "error", "failed")
    row = rows[("hal_broken", "05.1")]
    assert row["outcome"] == "missing" and "no 05_*.ipynb" in row["message"]
    row = rows[("hal_broken", "06.1")]
    assert row["outcome"] == "error" and "is not a notebook" in row["message"]
    assert outcome(rows, "hal_broken", "01.2") == "not attempted"  # the rest of that notebook is still graded
    row = rows[("ivy_old_version", "04.4")]
    assert row["outcome"] == "missing" and "another version of the kit" in row["message"]
    assert outcome(rows, "ivy_old_version", "04.1") == "not attempted"
    assert outcome(rows, "ivy_old_version", "01.1") == "missing"
    row = rows[("jon_empty", "03.1")]
    assert row["outcome"] == "missing" and "holds no notebook" in row["message"]


def test_forged_grades_and_killed_processes_cost_only_their_own_exercise(graded):
    rows = graded[0]
    assert outcome(rows, "kai_forges", "06.1") == "passed"  # earned, graded beside the attacks
    for key in ("06.2", "06.3"):
        assert outcome(rows, "kai_forges", key) in ("failed", "error"), rows[("kai_forges", key)]
    # The kill was refused, so the sandbox lived on: 06.2 is judged on its value (the labels handed back).
    assert (
        outcome(rows, "kai_forges", "06.2") == "failed" and "Exercise 06.2" in rows[("kai_forges", "06.2")]["message"]
    )
    assert "forged" not in rows[("kai_forges", "06.3")]["message"]
    earned = {key for key in EXERCISES if outcome(rows, "kai_forges", key) == "passed"}
    assert earned == {"06.1"}


def test_patched_checkers_and_lying_values_earn_nothing(graded):
    rows = graded[0]
    for student, key in (("lea_patches", "06.1"), ("lea_patches", "06.3"), ("max_liar", "06.1"), ("max_liar", "04.2")):
        assert outcome(rows, student, key) in ("failed", "error"), rows[(student, key)]


def test_resources_are_bounded_and_a_stopped_process_costs_its_exercise(graded):
    rows, _, _, _, _ = graded
    row = rows[("oli_resources", "06.1")]
    assert row["outcome"] == "failed" and "PermissionError" in row["message"] and "os.fork" in row["message"]
    assert outcome(rows, "oli_resources", "06.2") in ("error", "failed")  # MemoryError under --memory 1280
    # Stopping the worker is refused (seccomp) and the output went to a capped file: the function ran and passed.
    assert outcome(rows, "oli_resources", "06.3") == "passed"
    assert {outcome(rows, "oli_resources", key) for key in ("01.1", "04.1")} == {"not attempted"}


def test_nothing_of_the_teacher_leaks_into_the_messages(graded):
    rows, _, _, work, _ = graded
    message = rows[("pia_leaks", "06.1")]["message"]
    assert outcome(rows, "pia_leaks", "06.1") == "failed"  # its RuntimeError carries what it found
    assert "teacher-secret-4711" not in message and CANARY_VARIABLE not in message
    for leaked in ("README.md", "04_segmentation.ipynb", "ada_correct", "grades.csv", ".cache", "conftest.py"):
        assert leaked not in message, leaked
    assert "'HOME': '/tmp'" in message  # the environment is the sandbox's minimal one


def test_the_sandbox_process_itself_carries_no_teacher_environment(tmp_path):
    """bwrap's own environment is readable inside the sandbox (/proc/1/environ): it must be the minimal one."""
    notebook = student_notebook(json.loads((ROOT / "notebooks" / "06_evaluation.ipynb").read_text()))[0]
    body = "raise RuntimeError(repr(open('/proc/1/environ', 'rb').read()))"
    (tmp_path / "class" / "zed").mkdir(parents=True)
    (tmp_path / "class" / "zed" / "06_evaluation.ipynb").write_text(json.dumps(solve(notebook, "06.3", body)))
    env = {**os.environ, CANARY_VARIABLE: "teacher-secret-4711", "PATH": f"/opt/teacher-only:{os.environ['PATH']}"}
    result = ganet_grade(tmp_path / "class", tmp_path / "g.csv", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    message = rows_of(tmp_path / "g.csv")[("zed", "06.3")]["message"]
    assert "PATH=/usr/bin:/bin" in message
    assert "teacher-only" not in message and "teacher-secret-4711" not in message


def test_links_and_special_files_are_rows_never_followed(graded):
    rows = graded[0]
    for key in ("02.1", "03.1"):
        row = rows[("rex_links", key)]
        assert row["outcome"] == "error" and "is a link" in row["message"], row
    assert outcome(rows, "rex_links", "04.1") == "not attempted"  # the rest of the folder is graded
    assert {outcome(rows, "sam_follows", key) for key in EXERCISES} == {"error"}
    assert "is a link" in rows[("sam_follows", "01.1")]["message"]
    row = rows[("tia_special_files", "02.1")]
    assert row["outcome"] == "error" and "not a regular file" in row["message"]
    assert "is a link" in rows[("tia_special_files", "01.1")]["message"]
    assert "is not a notebook" in rows[("tia_special_files", "05.1")]["message"]
    assert outcome(rows, "tia_special_files", "06.1") == "missing"  # no well-formed cell claims it
    assert outcome(rows, "tia_special_files", "04.1") == "not attempted"


def test_the_csv_and_the_feedback_are_safe_to_open(graded):
    rows, _, _, work, _ = graded
    text = (work / "grades.csv").read_text()
    assert "\n=HYPERLINK" not in text and "'=HYPERLINK" in text
    page = next((work / "feedback").glob("=HYPERLINK*.md")).read_text()
    assert "<img" not in page and "&lt;img" in page and "\\[link\\](http" in page  # no tag, no link


def test_two_cells_claiming_one_exercise_say_which_was_graded(graded):
    row = graded[0][("uma_twice", "06.3")]
    assert row["outcome"] == "passed" and "found by its grade_id" in row["message"] and "also claim" in row["message"]


def test_grading_stays_fast(graded):
    """The whole class, attacks and 20 s loops included, within a bound (the honest class's seconds per
    student, side by side with the old grader, are in the README and measured by benchmarks)."""
    assert graded[4] < 400


def test_hidden_inputs_differ_per_student_and_secret():
    exercise = EXERCISES["05.3"]
    secret = b"s" * 32
    ours = exercises.check_cases(exercise, 5, hidden_seed(secret, "ada", "05.3"))
    theirs = exercises.check_cases(exercise, 5, hidden_seed(secret, "ben", "05.3"))
    later = exercises.check_cases(exercise, 5, hidden_seed(b"t" * 32, "ada", "05.3"))
    hand = len(exercise.cases)
    assert not np.array_equal(ours[hand].args[0], theirs[hand].args[0])
    assert not np.array_equal(ours[hand].args[0], later[hand].args[0])


def test_exercise_cells_are_found_by_grade_id_then_first_line_with_the_imports_above():
    notebook = json.loads((ROOT / "notebooks" / "04_segmentation.ipynb").read_text())
    sources = exercise_sources(notebook)
    assert sorted(sources) == ["04.1", "04.2", "04.3", "04.4"]
    cell = sources["04.2"]
    assert cell.source.startswith("# Exercise 04.2") and "import torch.nn.functional as F" in cell.imports
    for c in notebook["cells"]:
        if "".join(c["source"]).startswith("# Exercise 04.2"):
            c["source"] = "def l_adv(logits, edges):\n    return 0\n"  # the header lost, the grade_id kept
    assert exercise_sources(notebook)["04.2"].source.startswith("def l_adv")
    assert exercise_sources({"cells": ["x", 5, None, {"cell_type": "code", "source": 7}]}) == {}


def test_spreadsheet_and_markdown_escaping():
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert spreadsheet_safe(text) == "'" + text
    assert spreadsheet_safe("passed") == "passed"
    page = feedback_text("<b>x</b>", [grade.Grade("<b>x</b>", "06.3", "error", 0, 1, "<script>[a](b)")])
    assert "<script>" not in page and "<b>" not in page and "\\[a\\]" in page


def test_bad_arguments_are_one_sentence_and_exit_2(tmp_path):
    missing = ganet_grade(tmp_path / "nope", tmp_path / "g.csv")
    assert missing.returncode == 2 and "There is no folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = ganet_grade(tmp_path / "empty", tmp_path / "g.csv")
    assert empty.returncode == 2 and "holds no student folder" in empty.stderr
    assert not (tmp_path / "g.csv").exists()
    (tmp_path / "empty" / "ada").mkdir()
    for isolation in ("unshare", "none"):
        refused = ganet_grade(tmp_path / "empty", tmp_path / "g.csv", "--isolation", isolation)
        assert refused.returncode == 2 and "bubblewrap" in refused.stderr and "Traceback" not in refused.stderr


def test_a_sandbox_that_cannot_run_the_interpreter_stops_before_grading(tmp_path):
    """A bwrap that starts nothing (as when a bind is missing): exit 2 with the cause, no grades."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: execvp python: No such file or directory' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    (tmp_path / "class" / "ada").mkdir(parents=True)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    result = ganet_grade(tmp_path / "class", tmp_path / "g.csv", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "did not start inside the sandbox" in result.stderr and "No such file" in result.stderr
    assert not (tmp_path / "g.csv").exists()


def test_a_kit_under_tmp_grades_its_own_solutions(tmp_path_factory):
    """The kit and its virtual environment in a folder under /tmp, where bubblewrap's private /tmp would hide
    them: the teacher's notebooks get 16 of 16 from a copy there (the venv hard-linked, not copied)."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    kit = Path(tempfile.mkdtemp(prefix="ganet-kit-", dir="/tmp"))
    try:
        venv = Path(sys.prefix)
        linked = subprocess.run(["cp", "-al", str(venv), str(kit / ".venv")], capture_output=True)
        if linked.returncode != 0:
            pytest.skip(f"the venv cannot be hard-linked into /tmp here ({linked.stderr.decode()[:100]})")
        shutil.copytree(ROOT / "ganet_lib", kit / "ganet_lib")
        (kit / "submissions" / "teacher").mkdir(parents=True)
        for path in NOTEBOOKS:
            shutil.copy(path, kit / "submissions" / "teacher" / path.name)
        env = {**os.environ, "PYTHONPATH": str(kit)}
        result = ganet_grade(
            kit / "submissions", kit / "grades.csv", python=str(kit / ".venv" / "bin" / "python"), cwd=kit, env=env
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert str(kit) in result.stdout  # the secret's file: this run used the copy under /tmp
        rows = rows_of(kit / "grades.csv")
        assert {row["outcome"] for row in rows.values()} == {"passed"} and len(rows) == 16
    finally:
        shutil.rmtree(kit, ignore_errors=True)


def test_unconfined_workers_side_by_side_keep_their_own_folders(tmp_path):
    """Unconfined, two students graded at once share the machine's /tmp: each worker works in a folder of
    its own, so neither removes the other's exercise."""
    for name in ("ada", "bea"):
        (tmp_path / "class" / name).mkdir(parents=True)
        for path in NOTEBOOKS:
            shutil.copy(path, tmp_path / "class" / name / path.name)
    result = ganet_grade(tmp_path / "class", tmp_path / "g.csv", "--isolation", "unconfined", "--workers", "2")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "WARNING: --isolation unconfined" in result.stderr
    assert {row["outcome"] for row in rows_of(tmp_path / "g.csv").values()} == {"passed"}


def test_a_class_that_handed_in_only_unreadable_files_is_not_a_broken_grader(tmp_path):
    """No code ran, so the grader is not shown broken (exit 0): each row says what was handed in."""
    folder = tmp_path / "class" / "ada"
    folder.mkdir(parents=True)
    for path in NOTEBOOKS:
        os.mkfifo(folder / path.name)
    result = ganet_grade(tmp_path / "class", tmp_path / "g.csv", "--isolation", "unconfined")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = rows_of(tmp_path / "g.csv")
    assert {row["outcome"] for row in rows.values()} == {"error"}
    assert all("not a regular file" in row["message"] or "FIFO" in row["message"] for row in rows.values()), rows
    ran = grade.Grade("ada", "06.1", grade.ERROR, 0.0, 1.0, "the cell raised NameError")
    unread = grade.Grade("ada", "06.2", grade.ERROR, 0.0, 1.0, "not a notebook", ran=False)
    assert grade.broken_everywhere([ran, unread]) and not grade.broken_everywhere([unread])
