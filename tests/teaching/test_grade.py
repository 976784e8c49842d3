"""`ganet grade` on a made-up class: each student's exercises confined, graded on hidden cases, every
kind of broken submission one row of grades.csv with its sentence."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from ganet_lib.teaching.exercises import EXERCISES
from ganet_lib.teaching.grade import exercise_sources, find_isolation, hidden_folders
from ganet_lib.teaching.student import student_notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def ganet_grade(submissions: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    """`ganet grade SUBMISSIONS --out OUT OPTIONS` in a process of its own, from the checkout."""
    return subprocess.run(
        [sys.executable, "-m", "ganet_lib", "grade", str(submissions), "--out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
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


def write_class(folder: Path, canary: Path, port: int) -> None:
    """A class: one student per way a submission goes right or wrong."""
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
    student(
        "fay_writes",
        {"06": {"06.3": f"open({str(canary)!r}, 'w').write('pwned')\nreturn 0.0"}},
    )
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


class Recorder(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (the http.server name)
        Recorder.requests.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded with the strongest isolation here: (rows by (student, exercise), log, canary)."""
    work = tmp_path_factory.mktemp("class")
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Outside /tmp (bubblewrap gives student code a private one) and writable by the teacher: the checkout.
    canary = Path(tempfile.mkdtemp(dir=ROOT / ".pytest_cache" if (ROOT / ".pytest_cache").is_dir() else ROOT))
    canary = canary / "written_by_a_student.txt"
    write_class(work / "submissions", canary, server.server_address[1])
    result = ganet_grade(work / "submissions", work / "grades.csv", "--timeout", "20", "--seed", "7", "--workers", "2")
    server.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    with open(work / "grades.csv", newline="") as handle:
        rows = {(row["student"], row["exercise"]): row for row in csv.DictReader(handle)}
    yield rows, result.stdout + result.stderr, canary, work
    shutil.rmtree(canary.parent)


def outcome(rows, student, key) -> str:
    return rows[(student, key)]["outcome"]


def test_every_student_gets_a_row_per_exercise_and_a_feedback_file(graded):
    rows, log, _, work = graded
    students = {student for student, _ in rows}
    assert len(students) == 10 and len(rows) == 10 * len(EXERCISES)
    assert "isolation:" in log and "graded in" in log
    feedback = (work / "feedback" / "cem_mistakes.md").read_text()
    assert "of 16 points" in feedback and "04.2" in feedback and "seed 7" in feedback


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
    assert row["outcome"] == "failed" and "not finite" in row["message"]
    assert outcome(rows, "cem_mistakes", "04.3") == "failed"
    assert outcome(rows, "cem_mistakes", "06.1") == "failed"  # both empty: 0/0
    assert outcome(rows, "cem_mistakes", "01.1") == "not attempted"


def test_a_loop_costs_only_its_own_exercise(graded):
    rows = graded[0]
    assert outcome(rows, "dev_loops", "04.3") == "timed out"
    assert outcome(rows, "dev_loops", "06.3") == "failed"  # graded after the loop, in the same notebook's turn
    assert outcome(rows, "dev_loops", "04.4") == "not attempted"


def test_student_code_reaches_no_network_and_writes_nothing_outside(graded):
    rows, log, canary, _ = graded
    assert not Recorder.requests, Recorder.requests
    assert outcome(rows, "eli_network", "06.3") == "failed"
    if "isolation: bubblewrap" in log:
        assert not canary.exists()
        assert outcome(rows, "fay_writes", "06.3") == "failed"
        assert "Read-only file system" in rows[("fay_writes", "06.3")]["message"]


def test_the_kits_reference_handed_back_fails(graded):
    rows = graded[0]
    assert outcome(rows, "gus_reference", "04.2") == "failed"
    assert "calls the kit's own" in rows[("gus_reference", "04.2")]["message"]


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


def test_the_unshare_fallback_still_cuts_the_network(tmp_path):
    """Where bubblewrap is missing: unshare's new network namespace, then the same grading."""
    try:
        find_isolation("unshare")
    except RuntimeError:
        pytest.skip("unshare does not work on this machine")
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    before = len(Recorder.requests)
    home = tmp_path / "submissions" / "eli"
    home.mkdir(parents=True)
    notebook = student_notebook(json.loads((ROOT / "notebooks" / "06_evaluation.ipynb").read_text()))[0]
    body = (
        f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{server.server_address[1]}/', timeout=3)\n"
        "return 1.0"
    )
    (home / "06_evaluation.ipynb").write_text(json.dumps(solve(notebook, "06.3", body)))
    result = ganet_grade(tmp_path / "submissions", tmp_path / "g.csv", "--isolation", "unshare", "--timeout", "20")
    server.shutdown()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "isolation: unshare" in result.stdout and "file system stays writable" in result.stdout
    rows = {row["exercise"]: row for row in csv.DictReader(open(tmp_path / "g.csv"))}
    assert rows["06.3"]["outcome"] == "failed" and len(Recorder.requests) == before


def test_exercise_cells_are_found_by_their_first_line_with_the_imports_above():
    notebook = json.loads((ROOT / "notebooks" / "04_segmentation.ipynb").read_text())
    sources = exercise_sources(notebook)
    assert sorted(sources) == ["04.1", "04.2", "04.3", "04.4"]
    source, imports = sources["04.2"]
    assert source.startswith("# Exercise 04.2") and "import torch.nn.functional as F" in imports


def test_the_grader_never_hides_the_kit_or_python(tmp_path):
    assert hidden_folders((ROOT, tmp_path, Path(sys.prefix))) == (tmp_path.resolve(),)


def test_bad_arguments_are_one_sentence_and_exit_2(tmp_path):
    missing = ganet_grade(tmp_path / "nope", tmp_path / "g.csv")
    assert missing.returncode == 2 and "There is no folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = ganet_grade(tmp_path / "empty", tmp_path / "g.csv")
    assert empty.returncode == 2 and "holds no student folder" in empty.stderr
    assert not (tmp_path / "g.csv").exists()
    shutil.rmtree(tmp_path / "empty")
