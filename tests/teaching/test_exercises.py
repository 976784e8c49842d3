"""The exercises: every check accepts the library's reference and the notebooks' solutions, and
rejects its stub and a plausible wrong answer; the hand-worked cases are what the reference gives."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from ganet_lib.teaching.exercises import (
    EXERCISES,
    FAILED,
    NOT_ATTEMPTED,
    PASSED,
    TIMED_OUT,
    check,
    check_cases,
    judge,
    run_check,
    same,
)
from ganet_lib.teaching.sandbox import answer
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


def _erf(x):
    from scipy.special import erf

    return erf(x)


def _alt_enhance(image, lam=-0.8):
    """Eqs. (13)-(17) written out again, pixel by pixel in numpy (not the library's code)."""
    x = np.asarray(image, float)
    span = x.max() - x.min()
    i = (x - x.min()) / span if span > 0 else np.zeros_like(x)
    top = i.max()
    img1 = (top / np.log(top + 1) if top > 0 else 0.0) * np.log(i + 1)
    img2 = 1 - np.exp(-i)
    img3 = (img1 + img2) / (lam + img1 * img2)
    img4 = _erf(lam * np.arctan(np.exp(img3)) - img3 / 2)
    low, high = img4.min(), img4.max()
    return (img4 - low) / (high - low) if high > low else np.zeros_like(img4)


def _alt_minmax(images):
    span = np.ptp(images, axis=(-2, -1), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num((images - images.min(axis=(-2, -1), keepdims=True)) / span)


def _alt_edge_map(mask, size):
    grown = F.max_pool2d(mask, 5, 1, 2)
    p = F.pad(grown, (1, 1, 1, 1), mode="replicate")
    laplacian = p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4 * grown
    return F.adaptive_avg_pool2d(laplacian.abs(), size)


def _alt_soft_dice(logits, target):
    p = logits.softmax(1)[:, 1:]
    t = torch.stack([(target == c) for c in range(1, logits.shape[1])], 1).float()
    overlap = (p * t).sum((0, 2, 3))
    return 1 - ((2 * overlap + 1) / (p.sum((0, 2, 3)) + t.sum((0, 2, 3)) + 1)).mean()


def _alt_auc(scores, positive):
    from scipy.stats import rankdata

    ranks, n1 = rankdata(scores), int(positive.sum())
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(scores) - n1)))


def _alt_remove(labels, min_mm3, spacing):
    components, _ = ndimage.label(labels > 0, np.ones((3, 3, 3)))
    volumes = np.bincount(components.ravel()) * float(np.prod(spacing))
    keep = volumes >= min_mm3
    keep[0] = True
    return np.where(keep[components], labels, 0).astype(labels.dtype)


# A correct answer written differently from the library's (another formula, other functions):
# a check must accept it, not only the reference's own lines.
CORRECT = {
    "01.1": lambda mask: tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask)),
    "01.2": lambda label: {"WT": label > 0, "TC": (label == 1) | (label == 4), "ET": label == 4},
    "02.1": _alt_enhance,
    "02.2": lambda images: _alt_minmax(images),
    "03.1": lambda mask, shape: (F.adaptive_avg_pool2d(mask, shape) > 0).float(),
    "03.2": lambda real, fake, patches: (
        F.softplus(-real).mean() + (patches * F.softplus(fake) + (1 - patches) * F.softplus(-fake)).mean()
    ),
    "04.1": _alt_edge_map,
    "04.2": lambda logits, edges: (edges * -F.logsigmoid(logits)).sum() / edges.sum().clamp(min=1e-6),
    "04.3": lambda norms, eps: {k: (norms["seg"] + eps) / (v + eps) for k, v in norms.items()},
    "04.4": _alt_soft_dice,
    "05.1": lambda scores, positive, t: (
        float(np.mean(np.asarray(scores)[positive] <= t)),
        float(np.mean(np.asarray(scores)[~positive] > t)),
    ),
    "05.2": _alt_auc,
    "05.3": lambda a: -np.abs(np.arange(len(a)) - np.average(np.arange(len(a)), weights=a)) / np.count_nonzero(a),
    "06.1": lambda p, t: 1.0 if p.sum() + t.sum() == 0 else 2 * np.logical_and(p, t).sum() / (p.sum() + t.sum()),
    "06.2": _alt_remove,
    "06.3": lambda dices, fp: sum(dices) / (len(dices) + fp) if len(dices) + fp else 1.0,
}

# A second classic mistake per exercise, each caught by a hand case or the pipeline's needs.
WRONG_TOO = {
    "01.1": lambda mask: tuple(reversed(CORRECT["01.1"](mask))),  # axes in the wrong order
    "01.2": lambda label: {"WT": label > 0, "TC": np.isin(label, (1, 3)), "ET": label == 3},  # 2023 numbering
    "02.1": lambda image, lam=-0.8: _alt_enhance(image, lam) ** 0.5,  # Eq. (17) replaced by a gamma
    "02.2": lambda images: (images - images.min()) / max(float(np.ptp(images)), 1e-9),  # one scale for all slices
    "03.1": lambda mask, shape: F.interpolate(mask, size=shape, mode="nearest"),  # samples instead of "touches"
    "03.2": lambda real, fake, patches: (
        -torch.log(torch.sigmoid(real)).mean()
        - (patches * torch.log(1 - torch.sigmoid(fake)) + (1 - patches) * torch.log(torch.sigmoid(fake))).mean()
    ),  # log(sigmoid): infinite at +-100
    "04.1": lambda mask, size: F.adaptive_avg_pool2d(
        F.conv2d(
            F.pad(mask, (1, 1, 1, 1), mode="replicate"), torch.tensor([[[[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]]])
        ).abs(),
        size,
    ),  # no dilation, Eq. (11) left out
    "04.2": lambda logits, edges: (edges * -torch.log(torch.sigmoid(logits))).sum() / edges.sum().clamp(min=1e-6),
    "04.3": lambda norms, eps: {k: (v + eps) / (norms["seg"] + eps) for k, v in norms.items()},  # norm, not 1 / norm
    "04.4": lambda logits, target: (
        1
        - (
            (2 * (logits.softmax(1) * F.one_hot(target, 4).permute(0, 3, 1, 2)).sum((2, 3)) + 1)
            / (logits.softmax(1).sum((2, 3)) + F.one_hot(target, 4).permute(0, 3, 1, 2).sum((2, 3)) + 1)
        )[:, 1:].mean()
    ),  # sums per image
    "05.1": lambda scores, positive, t: (
        float(np.mean(np.asarray(scores)[positive] < t)),
        float(np.mean(np.asarray(scores)[~positive] >= t)),
    ),  # the threshold itself left out
    "05.2": lambda scores, positive: 1 - _alt_auc(scores, positive),  # the wrong direction
    "05.3": lambda a: -np.abs(np.arange(len(a)) - np.flatnonzero(a).mean()) / np.count_nonzero(a),  # unweighted
    "06.1": lambda p, t: 1.0 if (p | t).sum() == 0 else np.logical_and(p, t).sum() / np.logical_or(p, t).sum(),  # IoU
    "06.2": lambda labels, min_mm3, spacing: _alt_remove_6(labels, min_mm3, spacing),  # 6-connected
    "06.3": lambda dices, fp: sum(dices) / (len(dices) + fp) if len(dices) + fp else 0.0,  # nothing to count: 0
}


def _alt_remove_6(labels, min_mm3, spacing):
    components, _ = ndimage.label(labels > 0)  # 6-connected: faces only
    volumes = np.bincount(components.ravel()) * float(np.prod(spacing))
    keep = volumes >= min_mm3
    keep[0] = True
    return np.where(keep[components], labels, 0).astype(labels.dtype)


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_a_check_accepts_a_correct_answer_written_differently(key):
    outcome, message = run_check(key, CORRECT[key])
    assert outcome == PASSED, message
    # ... with other random inputs than the ones a student sees (a teacher's hidden cases)
    assert run_check(key, CORRECT[key], random_cases=5, seed=2026)[0] == PASSED


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_a_check_rejects_a_second_classic_mistake(key):
    outcome, message = run_check(key, WRONG_TOO[key])
    assert outcome == FAILED, message
    assert "hint" in message


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_handing_back_the_librarys_implementation_is_not_a_solution(key):
    exercise = EXERCISES[key]
    outcome, message = run_check(key, lambda *args: exercise.reference(*args))
    assert outcome == FAILED and "calls the kit's own" in message, message


def test_a_loss_must_stay_a_tensor_with_its_gradient():
    float_loss = lambda logits, edges: float(CORRECT["04.2"](logits, edges))  # noqa: E731
    outcome, message = run_check("04.2", float_loss)
    assert outcome == FAILED and "returned a float" in message and "torch tensor" in message
    detached = lambda logits, edges: CORRECT["04.2"](logits, edges).detach()  # noqa: E731
    outcome, message = run_check("04.2", detached)
    assert outcome == FAILED and "without a gradient" in message, message
    numpy_dice = lambda logits, target: torch.tensor(_alt_soft_dice(logits, target).item())  # noqa: E731
    outcome, message = run_check("04.4", numpy_dice)
    assert outcome == FAILED and "without a gradient" in message, message


def test_a_torch_exercise_keeps_the_dtype():
    outcome, message = run_check("04.1", lambda mask, size: _alt_edge_map(mask, size).double())
    assert outcome == FAILED and "float64" in message and "float32" in message, message
    as_array = lambda logits, edges: CORRECT["04.2"](logits, edges).numpy()  # noqa: E731
    outcome, message = run_check("04.2", as_array)
    assert outcome == FAILED and "returned a ndarray" in message, message


def test_a_loss_must_stay_finite_at_extreme_logits():
    outcome, message = run_check("04.2", WRONG_TOO["04.2"])
    assert outcome == FAILED and "not finite" in message and "logsigmoid" in message, message


def test_a_hand_case_names_the_classic_mistake_it_catches():
    outcome, message = run_check("04.4", WRONG["04.4"])  # background included
    assert outcome == FAILED and "with the background in it is 0.1042" in message, message
    outcome, message = run_check("04.4", WRONG_TOO["04.4"])  # per image
    assert outcome == FAILED and "summed per image 0.0417" in message, message
    outcome, message = run_check("06.2", WRONG_TOO["06.2"])
    assert outcome == FAILED and "26-connected" in message, message


def test_arrays_that_differ_are_summarised_not_dumped():
    outcome, message = run_check("06.2", WRONG_TOO["06.2"])
    assert "2 of 27 elements differ" in message and "the first at index (0, 0, 0): expected 2, received 0;" in message
    assert "largest difference is 2" in message and "..." not in message, message


def test_an_exception_shows_the_students_own_line():
    source = "def dice(p, t):\n    total = p.sum() + t.sum()\n    return 2 * (p & t).sum() / totl\n"
    namespace = {}
    exec(compile(source, "my_notebook_cell", "exec"), namespace)
    outcome, message = run_check("06.1", namespace["dice"])
    assert outcome == FAILED and "NameError" in message and "in your code, line 3" in message, message


def test_a_loop_that_never_ends_fails_within_the_time_limit(monkeypatch):
    import dataclasses
    import time

    from ganet_lib.teaching import exercises

    monkeypatch.setitem(exercises.EXERCISES, "06.1", dataclasses.replace(EXERCISES["06.1"], time_limit_s=1.0))

    def forever(p, t):
        while True:
            try:
                pass
            except Exception:  # a student's broad except cannot swallow the stop
                pass

    started = time.perf_counter()
    outcome, message = run_check("06.1", forever)
    assert outcome == TIMED_OUT and "took longer than 1 s; a loop that never ends?" in message
    assert time.perf_counter() - started < 5


def test_there_are_at_least_two_exercises_per_notebook_and_twelve_in_all():
    per_notebook = {}
    for key in EXERCISES:
        per_notebook.setdefault(key.split(".")[0], []).append(key)
    assert sorted(per_notebook) == ["01", "02", "03", "04", "05", "06"]
    assert all(len(keys) >= 2 for keys in per_notebook.values()) and len(EXERCISES) >= 12
    assert set(WRONG) == set(EXERCISES) == set(WRONG_TOO) == set(CORRECT)


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_a_check_accepts_the_reference_and_rejects_the_stub_and_a_wrong_answer(key, capsys):
    exercise = EXERCISES[key]
    assert run_check(key, exercise.reference, library_allowed=True)[0] == PASSED
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


def test_use_gives_the_students_function_only_after_its_check_passed(capsys, monkeypatch):
    from ganet_lib.teaching import exercises
    from ganet_lib.teaching.exercises import use

    monkeypatch.setattr(exercises, "_checked", {})  # a fresh kernel: no check has run
    mine = CORRECT["06.1"]
    assert use("06.1", mine) is EXERCISES["06.1"].reference  # not checked yet
    assert "using the kit's dice: exercise 06.1 has not been checked yet" in capsys.readouterr().out
    check("06.1", mine)
    assert use("06.1", mine) is mine
    assert "using your dice (exercise 06.1 passed)" in capsys.readouterr().out
    assert use("06.1", mine, my_code=False) is EXERCISES["06.1"].reference
    assert "my_code is off" in capsys.readouterr().out
    redefined = lambda p, t: mine(p, t)  # noqa: E731  the function changed after its check
    assert use("06.1", redefined) is EXERCISES["06.1"].reference
    assert "changed since its check passed" in capsys.readouterr().out
    check("06.1", WRONG["06.1"])
    assert use("06.1", WRONG["06.1"]) is EXERCISES["06.1"].reference
    assert "exercise 06.1 failed its check" in capsys.readouterr().out


def test_the_time_limit_works_inside_a_jupyter_kernel(tmp_path):
    """In JupyterLab a check runs in the kernel: the limit must stop a loop there too (SIGALRM needs
    the kernel's main thread, where ipykernel runs a cell)."""
    import nbformat
    from nbclient import NotebookClient

    code = """import dataclasses
from ganet_lib.teaching import exercises
exercises.EXERCISES["06.1"] = dataclasses.replace(exercises.EXERCISES["06.1"], time_limit_s=1.0)
def dice(p, t):
    while True:
        pass
_ = exercises.check("06.1", dice)
"""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    printed = "".join(output.get("text", "") for output in notebook.cells[0].outputs)
    assert "took longer than 1 s; a loop that never ends?" in printed, printed


# --- contracts the method relies on (issue 33): each wrong answer fails on the case that names its property ---


def _fixed_kernel_patches(mask, patch_shape):
    return torch.nn.functional.max_pool2d(mask, (mask.shape[-2] // patch_shape[0], mask.shape[-1] // patch_shape[1]))


def _fixed_kernel_edges(mask, output_size):
    from ganet_lib.method.losses import LAPLACIAN

    expanded = torch.nn.functional.max_pool2d(mask, 5, 1, 2)
    edges = torch.nn.functional.conv2d(
        torch.nn.functional.pad(expanded, (1, 1, 1, 1), mode="replicate"), LAPLACIAN.view(1, 1, 3, 3)
    ).abs()
    return torch.nn.functional.avg_pool2d(edges, (mask.shape[-2] // output_size[0], mask.shape[-1] // output_size[1]))


def _no_eps(norms, eps):
    inverse = {name: 1.0 / norm for name, norm in norms.items()}
    return {name: value / inverse["seg"] for name, value in inverse.items()}


def _components(labels, spacing):
    from scipy import ndimage

    components, count = ndimage.label(labels > 0, np.ones((3, 3, 3)))
    return components, np.bincount(components.ravel(), minlength=count + 1) * float(np.prod(spacing))


def _at_most(labels, min_mm3, spacing):
    components, volumes = _components(labels, spacing)
    keep = volumes > min_mm3
    keep[0] = True
    return np.where(keep[components], labels, 0).astype(labels.dtype)


def _in_place(labels, min_mm3, spacing):
    components, volumes = _components(labels, spacing)
    keep = volumes >= min_mm3
    keep[0] = True
    labels[~keep[components]] = 0
    return labels


def _uint8_masks(label):
    return {k: v.astype(np.uint8) for k, v in CORRECT["01.2"](label).items()}


def _edges_detached(logits, edges):
    return (edges.detach() * torch.nn.functional.softplus(-logits)).sum() / edges.detach().sum().clamp(min=1e-6)


def _edges_gradient_doubled(logits, edges):
    return CORRECT["04.2"](logits, 2 * edges - edges.detach())  # the same values, twice the gradient


@pytest.mark.parametrize(
    "key, wrong, said",
    [
        ("03.1", _fixed_kernel_patches, "a fixed kernel of H // h is right only where H is a multiple of h"),
        ("04.1", _fixed_kernel_edges, "64 is not a multiple of 6"),
        ("04.3", _no_eps, "gradient norm 0"),
        ("06.2", _at_most, "exactly min_mm3"),
        ("06.2", _in_place, "changed its input `labels` in place"),
        ("01.2", _uint8_masks, "masks of dtype uint8"),
        ("04.2", _edges_detached, "no gradient reaches `edges`, where the reference's is not zero"),
        ("04.2", _edges_gradient_doubled, "the gradient with respect to `edges` differs from the reference's"),
    ],
)
def test_a_contract_case_names_the_property_a_wrong_answer_breaks(key, wrong, said):
    outcome, message = run_check(key, wrong)
    assert outcome == FAILED and said in message, message
    assert run_check(key, CORRECT[key], random_cases=5, seed=33)[0] == PASSED  # the right answer still passes


def test_non_finite_advice_fits_its_cause():
    """02.1 has no logits: a NaN there is not a logsigmoid problem; 04.2 at logits of -120 is."""
    outcome, message = run_check("02.1", lambda image, lam=-0.8: np.full(np.shape(image), np.nan))
    assert outcome == FAILED and "not finite" in message and "logsigmoid" not in message
    naive = lambda logits, edges: (edges * -torch.log(torch.sigmoid(logits))).sum() / edges.sum().clamp(min=1e-6)  # noqa: E731
    outcome, message = run_check("04.2", naive)
    assert outcome == FAILED and "logsigmoid" in message, message


def test_a_reference_computed_case_keeps_the_dtype_also_without_a_gradient():
    outcome, message = run_check("03.1", lambda mask, shape: CORRECT["03.1"](mask, shape).double())
    assert outcome == FAILED and "float64" in message and "float32" in message, message


# --- a few hundred random inputs, and reruns that say what differs (issue 33) --------------------------------


def solutions():
    """(key, the notebook's solution function) for every exercise, each notebook's cells run in order."""
    namespaces = {}
    for name, source in exercise_cells():
        key = exercise_key(source)
        namespace = namespaces.setdefault(name, {})
        exec(compile(source, f"{name}:{key}", "exec"), namespace)
        yield key, namespace[EXERCISES[key].name]


def test_correct_answers_pass_a_few_hundred_random_inputs():
    """Each answer written differently (CORRECT) and each notebook's solution, on 300 random inputs and their
    reruns: a check that fails a right answer on an input it rarely draws is a wrong check."""
    answers = [(key, f"CORRECT[{key}]", CORRECT[key]) for key in sorted(EXERCISES)]
    answers += [(key, f"the solution of {key}", function) for key, function in solutions()]
    for key, who, function in answers:
        outcome, message = run_check(key, function, random_cases=300, seed=3300)
        assert outcome == PASSED, (who, message)


@pytest.mark.parametrize("key", sorted(key for key, exercise in EXERCISES.items() if exercise.probes))
def test_every_rerun_applies_to_many_random_inputs(key):
    """A rerun that its exercise's random inputs rarely allow would leave their failures unexplained."""
    exercise = EXERCISES[key]
    cases = check_cases(exercise, 100, seed=5)
    for probe in exercise.probes:
        reruns = [case for case in cases if case.rerun_of is not None and probe.input in case.says]
        assert len(reruns) >= 25, (key, probe.input, len(reruns))


def _random_inputs_only(key: str, function, seed: int = 11) -> tuple[str, str]:
    """The judgement of `function` on 5 random inputs and their reruns alone (no hand case before them)."""
    exercise = EXERCISES[key]
    hand = len(exercise.cases)
    cases = [
        case if case.rerun_of is None else dataclasses.replace(case, rerun_of=case.rerun_of - hand)
        for case in check_cases(exercise, 5, seed)[hand:]
    ]
    answers = [
        answer(function, case.args, exercise.gradient_args if case.upstream is not None else (), case.upstream)
        for case in cases
    ]
    return judge(exercise, cases, answers)


def _per_image_l_adv(logits, edges):
    return ((edges * F.softplus(-logits)).sum((1, 2, 3)) / edges.sum((1, 2, 3)).clamp(min=1e-6)).mean()


def _not_scaled_first(image, lam=-0.8):
    i = np.asarray(image, float)  # Eq. (13) on the raw slice: the min-max step left out
    img1 = i.max() / np.log(i.max() + 1) * np.log(i + 1)
    img2 = 1 - np.exp(-i)
    img3 = (img1 + img2) / (lam + img1 * img2)
    img4 = _erf(lam * np.arctan(np.exp(img3)) - img3 / 2)
    return (img4 - img4.min()) / (img4.max() - img4.min())


def _extent_of_all_slices(areas):
    z = np.arange(len(areas))
    return -np.abs(z - np.average(z, weights=areas)) / len(areas)


def _spacing_left_out(labels, min_mm3, spacing):
    return _alt_remove(labels, min_mm3, (1.0, 1.0, 1.0))


def _components_per_label(labels, min_mm3, spacing):
    kept = labels.copy()
    for value in (1, 2, 4):
        components, count = ndimage.label(labels == value, np.ones((3, 3, 3)))
        volumes = np.bincount(components.ravel(), minlength=count + 1) * float(np.prod(spacing))
        kept[(volumes < min_mm3)[components] & (components > 0)] = 0
    return kept


@pytest.mark.parametrize(
    "key, wrong, said",
    [
        ("03.1", _fixed_kernel_patches, "right on the same mask cropped to a multiple of the grid"),
        ("04.1", _fixed_kernel_edges, "only where the size is not a multiple of the grid"),
        ("02.1", _not_scaled_first, "it misses the first step"),
        ("02.2", WRONG_TOO["02.2"], "each slice is scaled by its own minimum and maximum"),
        ("04.2", _per_image_l_adv, "right on the batch's first image alone"),
        ("04.4", WRONG_TOO["04.4"], "the sums run over all the batch's images"),
        ("05.1", WRONG_TOO["05.1"], "where a score equals the threshold"),
        ("05.2", WRONG["05.2"], "it goes wrong on the ties"),
        ("05.3", _extent_of_all_slices, "the extent only those with brain"),
        ("06.2", _spacing_left_out, "it leaves out the spacing"),
        ("06.2", _components_per_label, "the components are those of the whole tumour"),
        ("06.3", WRONG["06.3"], "it leaves out the false positives"),
    ],
)
def test_a_rerun_says_what_differs_on_a_random_input(key, wrong, said):
    outcome, message = _random_inputs_only(key, wrong, seed=11)
    assert outcome == FAILED and said in message, message
    outcome, message = _random_inputs_only(key, CORRECT[key], seed=11)
    assert outcome == PASSED, message


def test_a_failure_the_reruns_cannot_explain_gets_no_rerun_sentence():
    outcome, message = _random_inputs_only("04.2", lambda logits, edges: F.softplus(-logits).mean())
    assert outcome == FAILED and "expected" in message and "Your function is right on" not in message, message


def test_the_hand_cases_run_before_the_reruns():
    """A wrong answer a hand case catches is told that case's mistake; a rerun only tells about a random input."""
    outcome, message = run_check("04.4", WRONG_TOO["04.4"])
    assert outcome == FAILED and "The mistake this case catches" in message and "(a rerun)" not in message
    outcome, message = run_check("06.2", _components_per_label)
    assert outcome == FAILED and "a random input" in message and "as one label (a rerun)" in message, message
