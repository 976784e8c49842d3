"""The exercises: every check accepts the library's reference and the notebooks' solutions, and
rejects its stub and a plausible wrong answer; the hand-worked cases are what the reference gives."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from ganet_lib.teaching.exercises import EXERCISES, FAILED, NOT_ATTEMPTED, PASSED, check, run_check, same
from ganet_lib.teaching.student import TAG, exercise_key

ROOT = Path(__file__).resolve().parents[2]


def stub(*args):
    raise NotImplementedError("Exercise: write your solution here")


# One plausible mistake per exercise: an off-by-one, a missing normalisation, a sign, a wrong set...
WRONG = {
    "01.1": lambda mask: tuple(
        slice(
            int(np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))[0]),
            int(np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))[-1]),
        )
        for axis in range(mask.ndim)
    ),  # stop not one past the end
    "01.2": lambda label: {
        "WT": np.isin(label, (1, 2, 4)),
        "TC": np.isin(label, (1, 2)),
        "ET": label == 4,
    },  # TC with edema
    "02.1": lambda image, lam=-0.8: np.asarray(image, float) / max(float(np.max(image)), 1e-9),  # no enhancement at all
    "02.2": lambda images: (
        np.asarray(images, float) / np.abs(np.asarray(images, float)).max(axis=(-2, -1), keepdims=True).clip(1e-9)
    ),  # no minimum
    "03.1": lambda mask, shape: F.adaptive_avg_pool2d(mask, shape),  # average: fractions, not "touches the hole"
    "03.2": lambda real, fake, patches: (
        F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    ),  # every patch fake
    "04.1": lambda mask, size: F.adaptive_avg_pool2d(
        F.conv2d(
            F.pad(F.max_pool2d(mask, 5, 1, 2), (1, 1, 1, 1), mode="replicate"),
            torch.tensor([[[[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]]]),
        ),
        size,
    ),  # no abs
    "04.2": lambda logits, edges: F.softplus(-logits).mean(),  # not weighted by the edges
    "04.3": lambda norms, eps: {k: 1.0 / (v + eps) for k, v in norms.items()},  # not normalised to lambda_seg = 1
    "04.4": lambda logits, target: (
        1
        - (2 * (logits.softmax(1) * F.one_hot(target, 4).permute(0, 3, 1, 2)).sum((0, 2, 3)) + 1)
        .div(logits.softmax(1).sum((0, 2, 3)) + F.one_hot(target, 4).permute(0, 3, 1, 2).sum((0, 2, 3)) + 1)
        .mean()
    ),  # background included
    "05.1": lambda scores, positive, t: (
        (np.asarray(scores) >= t)[positive].mean(),
        (np.asarray(scores) < t)[~positive].mean(),
    ),  # direction
    "05.2": lambda scores, positive: float(
        (scores[positive][:, None] > scores[~positive][None, :]).mean()
    ),  # ties count 0
    "05.3": lambda areas: (
        -np.abs(np.arange(len(areas)) - (np.arange(len(areas)) * areas).sum() / areas.sum())
    ),  # not divided by the extent
    "06.1": lambda p, t: 2.0 * (p & t).sum() / max(int(p.sum() + t.sum()), 1),  # both empty gives 0
    "06.2": lambda labels, min_mm3, spacing: np.where(
        np.bincount(ndimage.label(labels > 0, np.ones((3, 3, 3)))[0].ravel())[
            ndimage.label(labels > 0, np.ones((3, 3, 3)))[0]
        ]
        >= min_mm3,
        labels,
        0,
    ).astype(labels.dtype),  # voxels, not mm^3
    "06.3": lambda dices, fp: sum(dices) / len(dices) if dices else 1.0,  # false positives ignored
}


def test_there_are_at_least_two_exercises_per_notebook_and_twelve_in_all():
    per_notebook = {}
    for key in EXERCISES:
        per_notebook.setdefault(key.split(".")[0], []).append(key)
    assert sorted(per_notebook) == ["01", "02", "03", "04", "05", "06"]
    assert all(len(keys) >= 2 for keys in per_notebook.values()) and len(EXERCISES) >= 12
    assert set(WRONG) == set(EXERCISES)


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_a_check_accepts_the_reference_and_rejects_the_stub_and_a_wrong_answer(key, capsys):
    exercise = EXERCISES[key]
    assert run_check(key, exercise.reference)[0] == PASSED
    assert check(key, stub) == NOT_ATTEMPTED
    assert "not attempted yet" in capsys.readouterr().out
    outcome, message = run_check(key, WRONG[key])
    assert outcome == FAILED, message
    assert "expected" in message or "raised" in message
    assert "hint" in message


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_the_hand_worked_cases_are_what_the_library_gives(key):
    exercise = EXERCISES[key]
    for case in exercise.cases:
        if case.expected is not None:
            assert same(case.expected, exercise.reference(*case.args), exercise.tolerance), (key, case.note)


def exercise_cells():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if TAG in cell.get("metadata", {}).get("tags", []):
                yield path.name, "".join(cell["source"])


def test_every_exercise_is_in_its_notebook_and_its_solution_passes():
    found, namespaces = {}, {}
    for name, source in exercise_cells():
        key = exercise_key(source)
        assert key is not None and key.split(".")[0] == name[:2], (name, source[:60])
        namespace = namespaces.setdefault(name, {})  # one per notebook, the cells in order, as a kernel runs them
        exec(compile(source, f"{name}:{key}", "exec"), namespace)  # the teacher's solution, as the notebook defines it
        function = namespace[EXERCISES[key].name]
        outcome, message = run_check(key, function)
        assert outcome == PASSED, message
        found[key] = name
    assert sorted(found) == sorted(EXERCISES)


def test_a_failure_shows_the_input_the_expected_and_the_received_value():
    outcome, message = run_check("06.1", lambda p, t: 0.5)
    assert outcome == FAILED
    assert "input (array(3,)" in message and "expected 0.666667" in message and "received 0.5" in message
    outcome, message = run_check("06.1", lambda p, t: 1 / 0)
    assert outcome == FAILED and "ZeroDivisionError" in message
