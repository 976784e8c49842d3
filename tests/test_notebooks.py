"""The notebooks as files: committed without outputs, with a described papermill parameters cell.

(nbval executes them: `pytest notebooks/`, part of ./run_tests.sh.)
"""

import json
from pathlib import Path

import nbformat
import pytest
from papermill import inspect_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_notebooks_are_there():
    assert [p.stem[:2] for p in NOTEBOOKS][:2] == ["01", "02"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]  # as written: nbformat.read would add missing ids
    assert all("id" in cell for cell in cells), f"{path.name}: a cell has no id (nbformat 4.5 needs one)"
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name}: strip outputs (nbstripout) before committing"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_is_typed_and_commented(path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    parameters = inspect_notebook(str(path))  # what `papermill --help-notebook` prints
    assert {"profile", "run_dir", "brats_dir", "nfbs_dir"} <= set(parameters)
    for name, parameter in parameters.items():
        assert parameter["inferred_type_name"] != "None", f"{name} has no type annotation"
        assert parameter["help"], f"{name} has no comment (papermill --help-notebook shows it)"
