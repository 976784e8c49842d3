"""The library's shape: stage packages whose imports run one way, one home for a run folder's
layout, explicit arguments, and tests that mirror the packages. Read from the source (ast), so a
broken rule fails here before it confuses a reader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ganet_lib"
# Where each module sits in the flow; an import may only go to the same or a lower rank.
# errors, files, config: used by every stage. run: the run folder (finds the data, so above it).
# checkpoint: saving and safe loading (names its files through run). viz: draws arrays, so any
# stage from the method on may draw; it imports only the data stage.
RANKS = {
    "errors": 0,
    "files": 0,
    "config": 0,
    "data": 1,
    "run": 2,
    "checkpoint": 3,
    "viz": 3,
    "method": 4,
    "evaluation": 5,
    "studies": 6,
    "teaching": 7,
    "runner": 8,
    "__main__": 9,
}
# Modules that import the library inside functions, and why (nothing else may): the command line
# and the notebook runner start without importing torch.
LATE_IMPORTS = {"ganet_lib.runner.cli", "ganet_lib.runner.pipeline"}
# The names of a run folder's artefacts; `run.py` alone spells them.
LAYOUT_NAMES = {"best.pt", "last.pt", "metrics.csv", "postprocess.json"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    parts = module.split(".")
    return RANKS[parts[1]] if len(parts) > 1 else 0


def sources() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}


def imports(tree: ast.Module, modules: set[str]) -> list[tuple[str, bool]]:
    """(imported kit module, at module level?) for every import of the kit in `tree`."""
    top = set(tree.body)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ganet_lib"):
            for alias in node.names:  # `from ganet_lib.x import module` imports a module; else a name of x
                target = f"{node.module}.{alias.name}"
                found.append((target if target in modules else node.module, node in top))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node in top) for alias in node.names if alias.name.startswith("ganet_lib")]
    return found


def graph() -> dict[str, set[str]]:
    trees = sources()
    modules = set(trees)
    edges = {}
    for name, tree in trees.items():
        targets = {target for target, _ in imports(tree, modules)}
        # Importing a.b.c runs a/__init__ and a/b/__init__ first; a module's own packages have run already.
        edges[name] = (
            {parent for t in targets for parent in _parents(t) if parent in modules} - {name} - set(_parents(name))
        )
    return edges


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: k + 1]) for k in range(1, len(parts))]


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `edges` as a list of modules (the first one repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_library_has_no_import_circle():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_imports_run_data_method_evaluation_studies_teaching_runner():
    wrong = [
        f"{source} (rank {rank(source)}) imports {target} (rank {rank(target)})"
        for source, targets in graph().items()
        for target in targets
        if source != "ganet_lib" and target != "ganet_lib" and rank(target) > rank(source)
    ]
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_only_the_entry_points_import_the_library_inside_functions():
    trees = sources()
    late = sorted({name for name, tree in trees.items() for _, at_top in imports(tree, set(trees)) if not at_top})
    assert set(late) <= LATE_IMPORTS, f"imports inside functions in {sorted(set(late) - LATE_IMPORTS)}"


def test_every_stage_package_says_its_part():
    for package in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert doc and 2 <= len(doc.splitlines()) <= 5, f"{package.name}/__init__.py: a docstring of two to five lines"


def _string_constants(tree: ast.Module):
    """String constants and the first piece of f-strings, docstrings left out."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            yield node.lineno, node.values[0].value + "{"


def test_only_run_py_spells_a_run_folders_artefacts():
    spelled = []
    for name, tree in sources().items():
        if name == "ganet_lib.run":
            continue
        for line, text in _string_constants(tree):
            # A path piece, alone or joined with "/" (a help text's "RUN/gan/best.pt" is prose for a reader).
            is_path = " " not in text and not text.startswith("RUN/")
            if (is_path and set(text.split("/")) & LAYOUT_NAMES) or text.startswith("seg-{"):
                spelled.append(f"{name}:{line}: {text!r}")
    assert not spelled, "spell these through run.RunLayout / TrainingFolder:\n" + "\n".join(spelled)


def test_calls_with_more_than_four_arguments_name_them():
    trees = sources()
    kit = {
        node.name
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }
    crowded = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if (
                called in kit
                and not called.startswith("__")
                and len(node.args) + len(node.keywords) > 4
                and len(node.args) > 2
            ):
                crowded.append(f"{name}:{node.lineno}: {called}(...) with {len(node.args)} positional arguments")
    assert not crowded, "pass all but the first two by keyword:\n" + "\n".join(crowded)


@pytest.mark.parametrize(
    "test_file", sorted((ROOT / "tests").rglob("test_*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_tests_mirror_the_package(test_file):
    """tests/<stage>/test_<module>.py tests ganet_lib/<stage>/<module>.py; top-level test files test
    a top-level module or the kit as a whole (a file named in WHOLE_KIT)."""
    relative = test_file.relative_to(ROOT / "tests")
    module = relative.with_name(relative.name.removeprefix("test_"))
    whole_kit = {
        "test_layout.py",
        "test_notebooks.py",
        "test_package.py",
        "test_browser.py",
        "test_reproducibility.py",
        "test_bench_gpu.py",
    }
    assert (PACKAGE / module).is_file() or (len(relative.parts) == 1 and relative.name in whole_kit), (
        f"{relative} mirrors no module of ganet_lib ({module})"
    )
