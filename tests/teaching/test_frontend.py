"""Widget controls only where a front end shows them (ganet_lib/teaching/frontend.py), and every notebook's
widget cell asks first; headless executions are time-limited."""

import ast
import json
from pathlib import Path

import pytest

from ganet_lib.config import load_config
from ganet_lib.teaching.frontend import front_end_attached

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize(
    "session, forced, expected",
    [
        (None, None, False),  # papermill, nbval, nbconvert: no Jupyter server
        ("05_threshold_sweep.ipynb", None, True),  # JupyterLab's session manager names the notebook
        ("05_threshold_sweep.ipynb", "0", False),  # run_all.sh started from a notebook: still headless
        (None, "1", True),  # a front end that sets no session name
        (None, "yes", True),
        ("x.ipynb", "off", False),
    ],
)
def test_front_end_attached(monkeypatch, session, forced, expected):
    for name, value in (("JPY_SESSION_NAME", session), ("GANET_WIDGETS", forced)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert front_end_attached() is expected


def code_cells(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


def interact_calls(source: str) -> list[bool]:
    """For each `interact(...)` / `widgets.interact(...)` call of a cell: is it inside `if front_end_attached():`?"""
    found = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "front_end_attached()":
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, guarded)
            return
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "interact":
            found.append(guarded)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    lines = [line for line in source.splitlines() if not line.lstrip().startswith("%")]  # IPython magics are not Python
    visit(ast.parse("\n".join(lines)), False)
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widget_controls_are_built_only_under_a_front_end(path):
    for source in code_cells(path):
        assert all(interact_calls(source)), f"{path.name}: this cell builds widgets headlessly:\n{source}"


def test_the_guard_check_sees_an_unguarded_call():
    assert interact_calls("_ = interact(show, z=1)") == [False]
    assert interact_calls("if front_end_attached():\n    _ = widgets.interact(show, z=1)") == [True]


def test_the_widget_notebooks_have_a_guarded_explorer():
    explorers = {path.name for path in NOTEBOOKS if any(interact_calls(source) for source in code_cells(path))}
    assert {"02_enhancement.ipynb", "05_threshold_sweep.ipynb", "06_evaluation.ipynb"} <= explorers


def test_nbval_runs_each_cell_under_the_smoke_profiles_limit(pytestconfig):
    assert pytestconfig.getoption("nbval_cell_timeout") == load_config("smoke").notebooks.cell_timeout_s == 300


def test_every_profile_bounds_a_cell():
    limits = {profile: load_config(profile).notebooks.cell_timeout_s for profile in ("smoke", "default", "paper")}
    assert 0 < limits["smoke"] < limits["default"] < limits["paper"]


@pytest.mark.parametrize(
    "given, environment, session, expected, run_dir",
    [
        ("", None, "04_segmentation.ipynb", "smoke", ""),  # JupyterLab, nothing chosen: seconds per cell
        ("", None, None, "", ""),  # headless without a profile: setup_run's default
        ("default", None, "04_segmentation.ipynb", "default", ""),  # chosen in the parameters cell
        ("", "paper", "04_segmentation.ipynb", "", ""),  # GANET_PROFILE: setup_run reads it
        ("default", None, None, "default", ""),  # ./run_all.sh always passes one
        ("", None, "04_segmentation.ipynb", "", "/runs/teacher"),  # a run folder handed out: its own settings
    ],
)
def test_notebooks_start_on_the_interactive_profile_only_in_a_front_end(
    monkeypatch, capsys, given, environment, session, expected, run_dir
):
    from ganet_lib.teaching.frontend import notebook_profile

    monkeypatch.delenv("GANET_WIDGETS", raising=False)
    for name, value in (("GANET_PROFILE", environment), ("JPY_SESSION_NAME", session)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("GANET_RUN", raising=False)
    assert notebook_profile(given, run_dir) == expected
    said = capsys.readouterr().out
    assert ("profile 'smoke'" in said and 'profile = "default"' in said) == (expected == "smoke")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_says_how_long_it_takes_and_starts_on_the_interactive_profile(path):
    cells = json.loads(path.read_text())["cells"]
    first = "".join(cells[0]["source"])
    assert "**Time**" in first and "on the `smoke` profile" in first and "on `default`" in first
    assert any("setup_run(notebook_profile(profile, run_dir)" in source for source in code_cells(path))
