"""The student edition: the solution notebooks with every exercise's solution replaced by a stub.

The notebooks in `notebooks/` are the solution source (`./run_all.sh` and nbval execute them). An
exercise is a code cell tagged `exercise` whose first line names it (`# Exercise 04.1: ...`) and
whose solution lines sit between the markers `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's
markers). The student edition keeps the cell and the function's signature and docstring, replaces
the marked lines with `raise NotImplementedError("Exercise 04.1: ...")` at the same indentation,
and drops every output. Hints are markdown `<details>` blocks, collapsed in JupyterLab.

Headless: defining a stub raises nothing, and the check cell after it (`exercises.check`) catches
the NotImplementedError and prints "not attempted yet"; the cells after it use the library. So the
student edition runs under papermill (which fails on any error) from top to bottom.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_folder

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"  # nbgrader's: graded, never shown
TAG = "exercise"
_KEY = re.compile(r"#\s*Exercise\s+(\d\d\.\d+)")


def exercise_key(source: str) -> str | None:
    """The exercise key ("04.1") named on an exercise cell's first line, or None."""
    first = source.lstrip().split("\n", 1)[0]
    match = _KEY.match(first)
    return match.group(1) if match else None


def stub_source(source: str, where: str = "the cell") -> str:
    """An exercise cell's source with each solution block replaced by a NotImplementedError stub.

    Raises:
        ValueError: markers missing, unbalanced or nested (names `where`).
    """
    key = exercise_key(source) or "?"
    lines, out, inside, blocks = source.split("\n"), [], False, 0
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}: a second '{BEGIN}' before '{END}'")
            inside, blocks = True, blocks + 1
            indent = line[: len(line) - len(line.lstrip())]
            out.append(
                f'{indent}raise NotImplementedError("Exercise {key}: write your solution here (the hint below helps)")'
            )
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}: '{END}' without '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside or blocks == 0:
        raise ValueError(f"{where}: an exercise cell needs one '{BEGIN}' ... '{END}' block")
    return "\n".join(out)


def without_hidden_tests(source: str) -> str:
    """A cell's source without its `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` blocks (what
    nbgrader's autograde runs and a student never sees), trailing blank lines dropped."""
    out, inside = [], False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped in (HIDDEN_BEGIN, HIDDEN_END):
            inside = stripped == HIDDEN_BEGIN
        elif not inside:
            out.append(line)
    return "\n".join(out).rstrip("\n")


def solution_lines(source: str) -> list[str]:
    """The lines between the markers (stripped, non-empty): what must not survive in the student edition."""
    lines, inside, found = source.split("\n"), False, []
    for line in lines:
        stripped = line.strip()
        if stripped in (BEGIN, END):
            inside = stripped == BEGIN
        elif inside and stripped:
            found.append(stripped)
    return found


def cell_source(cell: dict) -> str:
    """A notebook cell's source as one string (nbformat stores a string or a list of lines)."""
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def student_notebook(notebook: dict, name: str = "notebook", keep_outputs: bool = False) -> tuple[dict, list[str]]:
    """The student edition of one notebook (a new dict) and the exercise keys it holds: solutions as
    stubs, hidden tests removed, outputs dropped (kept with `keep_outputs`, for a book of a run)."""
    notebook = json.loads(json.dumps(notebook))  # a deep copy
    keys = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            if not keep_outputs:
                cell["outputs"], cell["execution_count"] = [], None
            if HIDDEN_BEGIN in cell_source(cell):
                cell["source"] = without_hidden_tests(cell_source(cell))
            if TAG in cell.get("metadata", {}).get("tags", []):
                source = cell_source(cell)
                key = exercise_key(source)
                if key is None:
                    raise ValueError(f"{name}, cell {index}: an exercise cell must start with '# Exercise NN.K: ...'")
                cell["source"] = stub_source(source, f"{name}, cell {index}")
                keys.append(key)
        for key in ("papermill", "execution"):
            cell.get("metadata", {}).pop(key, None)
    notebook.get("metadata", {}).pop("papermill", None)
    notebook.get("metadata", {}).pop("widgets", None)
    return notebook, keys


STAMP = ".ganet-edition.json"  # beside the notebooks: each notebook's sha256 as the edition wrote it


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def changed_notebooks(out_dir: Path) -> list[str]:
    """The notebooks of an edition folder that differ from what the edition wrote there (a student's
    work), by the stamp; every notebook when there is no stamp (then nothing says it is unchanged)."""
    stamp_path = out_dir / STAMP
    stamp = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
    return [p.name for p in sorted(out_dir.glob("[0-9][0-9]_*.ipynb")) if stamp.get(p.name) != _digest(p.read_text())]


def keep_exercise_cells(edition: dict, earlier: dict) -> tuple[dict, list[str]]:
    """`edition` with each exercise cell's source taken from `earlier` (a student's copy), matched by
    the exercise key; returns it and the keys kept."""
    written = {
        exercise_key(cell_source(cell)): cell["source"]
        for cell in earlier.get("cells", [])
        if cell.get("cell_type") == "code" and TAG in cell.get("metadata", {}).get("tags", [])
    }
    kept = []
    for cell in edition["cells"]:
        key = exercise_key(cell_source(cell)) if TAG in cell.get("metadata", {}).get("tags", []) else None
        if key in written:
            cell["source"] = written[key]
            kept.append(key)
    return edition, kept


def write_student_edition(
    source_dir: Path | str, out_dir: Path | str, force: bool = False, update: bool = False
) -> dict[str, list[str]]:
    """Write the student edition of every notebook of `source_dir` into `out_dir` (replaced as a
    whole, through a temporary sibling folder); returns notebook name -> its exercise keys.

    A notebook there that differs from what the edition wrote (a student's work) is never lost:
    the call refuses, unless `update` (keep its exercise cells, take everything else from the new
    edition; notebooks the source no longer has stay) or `force` (overwrite).

    Raises:
        KitInputError: no notebooks in `source_dir`; `out_dir` holds other files; a changed notebook
            without `update` or `force`.
    """
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    notebooks = sorted(source_dir.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise KitInputError(f"No notebooks (NN_*.ipynb) in '{source_dir}'; give the kit's notebooks/ folder.")
    earlier = sorted(out_dir.glob("[0-9][0-9]_*.ipynb")) if out_dir.is_dir() else []
    if out_dir.exists() and any(
        not re.fullmatch(r"\d\d_.*\.ipynb", p.name) and p.name != STAMP for p in out_dir.iterdir()
    ):
        raise KitInputError(
            f"'{out_dir}' holds files other than notebooks of an earlier student edition; choose an empty or new "
            "folder."
        )
    changed = changed_notebooks(out_dir) if earlier else []
    if changed and not (force or update):
        raise KitInputError(
            f"'{out_dir / changed[0]}' differs from the notebook the student edition wrote there (a student's work?); "
            "pass --update to keep its exercise cells and take the rest from the new edition, or --force to "
            "overwrite it."
        )
    written, digests = {}, {}
    with atomic_folder(out_dir, replace=True) as partial:
        for path in notebooks:
            edition, keys = student_notebook(json.loads(path.read_text()), path.name)
            if update and (out_dir / path.name).is_file():
                edition, _ = keep_exercise_cells(edition, json.loads((out_dir / path.name).read_text()))
            text = json.dumps(edition, indent=1, ensure_ascii=False) + "\n"
            (partial / path.name).write_text(text)
            written[path.name], digests[path.name] = keys, _digest(text)
        if update:  # a notebook the source no longer has is a student's to delete, not the kit's
            for path in earlier:
                if path.name not in written:
                    shutil.copy2(path, partial / path.name)
                    digests[path.name] = _digest(path.read_text())
        (partial / STAMP).write_text(json.dumps(digests, indent=1) + "\n")
    return written
