"""The student edition, written from the solution notebooks: stubs, no solutions, no outputs; it runs
headlessly with every exercise "not attempted yet"; the book of a run; the first cell's install hint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganet_lib.runner.cli import main
from ganet_lib.teaching.book import write_book
from ganet_lib.teaching.exercises import EXERCISES
from ganet_lib.teaching.student import (
    BEGIN,
    END,
    HIDDEN_BEGIN,
    TAG,
    exercise_key,
    solution_lines,
    stub_source,
    without_hidden_tests,
)

ROOT = Path(__file__).resolve().parents[2]


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student") / "edition"
    assert main(["student-edition", "--out", str(out)]) == 0
    return out


def test_the_edition_has_every_exercise_as_a_stub_and_no_solution_line(edition):
    keys = []
    for source in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        solution_cells = [c for c in cells(source) if TAG in c["metadata"].get("tags", [])]
        student_cells = [c for c in cells(edition / source.name) if TAG in c["metadata"].get("tags", [])]
        assert len(student_cells) == len(solution_cells) >= 2
        for solution, student in zip(solution_cells, student_cells):
            key = text(solution).split("\n", 1)[0].split()[2].rstrip(":")
            keys.append(key)
            body = text(student)
            assert f'raise NotImplementedError("Exercise {key}:' in body and BEGIN not in body and END not in body
            for line in solution_lines(text(solution)):
                assert line not in body, (key, line)  # no solution line survives
            assert f"def {EXERCISES[key].name}(" in body  # the signature and docstring stay
        student_all = cells(edition / source.name)
        assert all(
            c.get("outputs", []) == [] and c.get("execution_count") is None
            for c in student_all
            if c["cell_type"] == "code"
        )
        assert any("<details><summary>Hint" in text(c) for c in student_all if c["cell_type"] == "markdown")
    assert sorted(keys) == sorted(EXERCISES)


def test_stub_source_keeps_the_indentation_and_refuses_broken_markers():
    source = (
        '# Exercise 09.1: x\ndef f(x):\n    """Doc."""\n'
        "    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
    )
    stubbed = stub_source(source)
    assert (
        '    raise NotImplementedError("Exercise 09.1: write your solution here' in stubbed
        and "return x + 1" not in stubbed
    )
    namespace = {}
    exec(stubbed, namespace)
    with pytest.raises(NotImplementedError, match="09.1"):
        namespace["f"](1)
    for broken in ("def f():\n    ### BEGIN SOLUTION\n    pass\n", "def f():\n    pass\n"):
        with pytest.raises(ValueError, match="BEGIN SOLUTION"):
            stub_source(broken, "nb, cell 3")


def test_the_edition_refuses_a_folder_with_other_files(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("mine")
    assert main(["student-edition", "--out", str(tmp_path)]) == 2
    assert (
        "holds files other than notebooks" in capsys.readouterr().err
        and (tmp_path / "thesis.tex").read_text() == "mine"
    )


def test_the_student_edition_runs_headlessly_with_every_exercise_not_attempted(edition, tmp_path):
    """As a teacher checks an edition before handing it out: every notebook executed by the kit's
    runner (papermill, which fails on any error) in the smoke profile."""
    run = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ganet_lib.runner.pipeline",
            "--profile",
            "smoke",
            "--run",
            str(run),
            "--notebooks",
            str(edition),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = ""
    for path in sorted((run / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in cells(path):
            for output in cell.get("outputs", []):
                outputs += "".join(output.get("text", ""))
    for key, exercise in EXERCISES.items():
        assert f"TODO    Exercise {key} ({exercise.name}" in outputs and "not attempted yet" in outputs
    assert "PASSED  Exercise" not in outputs and "FAILED  Exercise" not in outputs
    # my_code falls back: every function the cells after an exercise use is the kit's, and they say so.
    for key in ("02.1", "02.2", "04.1", "04.2", "04.3", "04.4", "05.1", "05.2", "06.1", "06.3"):
        assert f"using the kit's {EXERCISES[key].name}: exercise {key} is not attempted yet" in outputs, key
    assert "using your" not in outputs

    # The book of that run: an index and one page per notebook, the figures inside the pages.
    index = write_book(run, tmp_path / "book")
    pages = sorted(p.name for p in (tmp_path / "book").glob("[0-9][0-9]_*.html"))
    assert len(pages) == 6 and all(f'href="{page}"' in index.read_text() for page in pages)
    assert "data:image/png;base64" in (tmp_path / "book" / "04_segmentation.html").read_text()


def test_the_first_cell_names_the_install_command_without_the_kit(tmp_path):
    first = next(c for c in cells(ROOT / "notebooks" / "01_data.ipynb") if c["cell_type"] == "code")
    assert "parameters" not in first["metadata"].get("tags", [])
    # -S: no site-packages, so the kit (installed there) cannot be found, as in a kernel without it.
    done = subprocess.run(
        [sys.executable, "-S", "-c", text(first)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: This notebook needs the GANet-Seg kit") and "pip install" in last
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert text(next(c for c in cells(path) if c["cell_type"] == "code")) == text(
            first
        )  # the same first cell everywhere


def test_no_solution_line_appears_anywhere_in_the_student_edition(edition):
    """The exercises ask for lines a student must not find elsewhere in the edition (the by-hand L_adv
    cell of notebook 04 once held 04.1's and 04.2's)."""
    solutions = set()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in cells(path):
            source = text(cell)
            if "### BEGIN SOLUTION" in source:
                inside = source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
                code = (line.split("  #")[0].strip() for line in inside.splitlines())  # without comments
                solutions |= {line for line in code if len(line) >= 25}
    assert len(solutions) > 16
    found = [
        (path.name, line)
        for path in sorted(edition.glob("*.ipynb"))
        for cell in cells(path)
        for line in solutions
        if line in text(cell)
    ]
    assert not found, found


def test_writing_the_edition_again_never_destroys_a_students_work(tmp_path, capsys):
    out = tmp_path / "edition"
    assert main(["student-edition", "--out", str(out)]) == 0
    assert main(["student-edition", "--out", str(out)]) == 0  # unchanged: written again without a word
    mine = out / "04_segmentation.ipynb"
    notebook = json.loads(mine.read_text())
    for cell in notebook["cells"]:
        if text(cell).startswith("# Exercise 04.3"):
            cell["source"] = text(cell).replace(
                text(cell)[text(cell).index("    raise NotImplementedError") :], "    return {}  # mine\n"
            )
    mine.write_text(json.dumps(notebook, indent=1))
    before = mine.read_text()
    capsys.readouterr()
    assert main(["student-edition", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert str(mine) in error and "--update" in error and "--force" in error
    assert mine.read_text() == before  # nothing touched

    assert main(["student-edition", "--out", str(out), "--update"]) == 0
    kept = [text(c) for c in cells(mine) if text(c).startswith("# Exercise 04.3")]
    assert "return {}  # mine" in kept[0]
    assert any("NotImplementedError" in text(c) for c in cells(mine) if text(c).startswith("# Exercise 04.1"))
    assert main(["student-edition", "--out", str(out)]) == 0  # the updated folder is the edition's again

    mine.write_text(before)
    assert main(["student-edition", "--out", str(out), "--force"]) == 0
    assert not any("# mine" in text(c) for c in cells(mine))
    with pytest.raises(SystemExit) as usage:  # one or the other
        main(["student-edition", "--out", str(out), "--force", "--update"])
    assert usage.value.code == 2


def test_every_exercise_is_an_nbgrader_solution_cell_and_its_check_a_grade_cell_with_a_hidden_test():
    ids = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook_cells = [c for c in cells(path) if c["cell_type"] == "code"]
        for index, cell in enumerate(notebook_cells):
            if TAG not in cell["metadata"].get("tags", []):
                continue
            key = exercise_key(text(cell))
            solution = cell["metadata"]["nbgrader"]
            assert (
                solution["solution"] and not solution["grade"] and solution["grade_id"] == f"ex{key.replace('.', '_')}"
            )
            check = notebook_cells[index + 1]  # the check cell follows its exercise
            grade = check["metadata"]["nbgrader"]
            assert grade["grade"] and grade["locked"] and not grade["solution"]
            assert grade["points"] == EXERCISES[key].points and grade["grade_id"] == f"check{key.replace('.', '_')}"
            name = EXERCISES[key].name
            assert f'exercises.check("{key}", {name})' in text(check)
            assert f'exercises.require("{key}", {name})' in text(check).split(HIDDEN_BEGIN, 1)[1]
            ids += [solution["grade_id"], grade["grade_id"]]
    assert len(ids) == 2 * len(EXERCISES) == len(set(ids))


def test_the_kits_edition_drops_the_hidden_tests(edition):
    for path in sorted(edition.glob("*.ipynb")):
        assert all(HIDDEN_BEGIN not in text(c) and "exercises.require" not in text(c) for c in cells(path))
    assert without_hidden_tests("a\n### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc") == "a\nc"


def test_require_raises_with_the_checks_message_unless_passed():
    from ganet_lib.teaching.exercises import require

    def lesion_wise_dice(lesion_dices, false_positives):
        return sum(lesion_dices) / (len(lesion_dices) + false_positives) if lesion_dices or false_positives else 1.0

    require("06.3", lesion_wise_dice, seed=5)  # right lines pass on any seed
    with pytest.raises(AssertionError, match="Exercise 06.3"):
        require("06.3", lambda lesion_dices, false_positives: 1.0, seed=5)


def test_nbgrader_releases_the_teachers_notebooks_and_autogrades_a_submission(tmp_path):
    """nbgrader's own commands on the kit's notebooks: generate_assignment hides every solution and
    hidden test; autograde of a submission with 01.1 solved and 01.2 untouched gives 1 of 16 points."""
    pytest.importorskip("nbgrader", reason="nbgrader is an extra of the test environment")
    course = tmp_path / "course"
    (course / "source" / "ganet").mkdir(parents=True)
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        (course / "source" / "ganet" / path.name).write_text(path.read_text())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # its alembic

    def nbgrader(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=course,
            env=env,
        )
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]

    nbgrader("generate_assignment", "ganet", "--force")
    released = course / "release" / "ganet"
    teacher = {path.name: cells(path) for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    for name, teacher_cells in teacher.items():
        body = (released / name).read_text()
        assert BEGIN not in body and HIDDEN_BEGIN not in body and "exercises.require" not in body
        for cell in teacher_cells:
            if TAG in cell["metadata"].get("tags", []):
                assert all(json.dumps(line)[1:-1] not in body for line in solution_lines(text(cell)))
    submission = json.loads((released / "01_data.ipynb").read_text())
    solved = next(c for c in teacher["01_data.ipynb"] if text(c).startswith("# Exercise 01.1"))
    for cell in submission["cells"]:
        if text(cell).startswith("# Exercise 01.1"):
            cell["source"] = solved["source"]
    (course / "submitted" / "alice" / "ganet").mkdir(parents=True)
    (course / "submitted" / "alice" / "ganet" / "01_data.ipynb").write_text(json.dumps(submission))
    nbgrader("autograde", "ganet", "--force")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        grades = {
            grade.name: grade.score
            for notebook in gradebook.find_submission("ganet", "alice").notebooks
            for grade in notebook.grades
        }
    assert grades["check01_1"] == 1.0 and grades["check01_2"] == 0.0
    assert sum(grades.values()) == 1.0 and len(grades) == len(EXERCISES)
