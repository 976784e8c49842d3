"""The notebooks' exercises: hand-computable cases, the library reference, and the check a student runs.

Each exercise asks for one key step of the method as a function. `check(key, function)` calls the
student's function on cases a person can work out by hand (their `note` says how), then on a few
random inputs against the library function the pipeline itself uses (`reference`), and prints one
of three outcomes:

- `passed`;
- `not attempted yet` (the stub still raises NotImplementedError), so a student edition runs
  headlessly from top to bottom without an error;
- `failed`, with the input, the expected and the received value, and a pointer to the hint.

The notebooks never use a student's function after its check: the cells that follow call the
library, so the rest of a notebook always runs. The student edition (`student.py`) is written
from the solution notebooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ganet_lib.data.labels import BRATS
from ganet_lib.evaluation.metrics import dice, lesion_wise_means, roc_auc
from ganet_lib.evaluation.postprocess import PostProcessing
from ganet_lib.evaluation.surface import bounding_box
from ganet_lib.method.enhance import enhancement_steps, minmax_per_slice
from ganet_lib.method.losses import dice_loss, discriminator_loss, edge_map, edge_weighted_adversarial, patch_targets
from ganet_lib.method.train_seg import inverse_norm_weights
from ganet_lib.studies.detector import sweep_table
from ganet_lib.studies.position import position_covariates

PASSED, NOT_ATTEMPTED, FAILED = "passed", "not attempted yet", "failed"


@dataclass(frozen=True)
class Case:
    args: tuple
    expected: Any = None  # the hand-worked answer; None: the reference's (the note says what to expect)
    note: str = ""


@dataclass(frozen=True)
class Exercise:
    key: str  # "04.1": notebook 04, first exercise
    name: str  # the function the student writes
    title: str
    reference: Callable  # the library's own implementation, in the student's signature
    cases: tuple[Case, ...]
    random_args: Callable[[np.random.Generator], tuple] | None = None  # inputs compared with the reference
    tolerance: float = 1e-5
    tags: tuple[str, ...] = field(default_factory=tuple)


# --- the references, in the signatures the exercises ask for ------------------------------------------


def _ref_bounding_box(mask):
    return bounding_box(np.asarray(mask, bool))


def _ref_region_masks(label):
    return {region: BRATS.region_mask(label, region) for region in BRATS.regions}


def _ref_enhance(image, lam=-0.8):
    return enhancement_steps(image, lam)["IMG5"]


def _ref_minmax(images):
    return minmax_per_slice(images)


def _ref_fake_patches(mask, patch_shape):
    return patch_targets(mask, torch.zeros(mask.shape[0], 1, *patch_shape))


def _ref_discriminator_loss(real_logits, fake_logits, fake_patches):
    return discriminator_loss(real_logits, fake_logits, fake_patches)


def _ref_edge_map(mask, output_size):
    return edge_map(mask, output_size)


def _ref_l_adv(logits, edges):
    return edge_weighted_adversarial(logits, edges)


def _ref_dynamic_weights(norms, eps):
    return inverse_norm_weights(norms, eps)


def _ref_dice_loss(logits, target):
    return dice_loss(logits, target)


def _ref_sensitivity_specificity(scores, positive, threshold):
    row = sweep_table(scores, positive, (threshold,))[0]
    return row["sensitivity"], row["specificity"]


def _ref_roc_auc(scores, positive):
    return roc_auc(scores, positive)


def _ref_centre_closeness(areas):
    return position_covariates(areas)["centre_closeness"]


def _ref_dice(prediction, truth):
    return dice(prediction, truth)


def _ref_remove_small_components(labels, min_mm3, spacing):
    return PostProcessing("min-volume", min_mm3).apply(labels, spacing)


def _ref_lesion_wise_dice(lesion_dices, false_positives):
    return lesion_wise_means(list(lesion_dices), [0.0] * len(lesion_dices), false_positives)[0]


# --- hand-made inputs --------------------------------------------------------------------------------------


def _mask(shape, *points):
    mask = np.zeros(shape, bool)
    for point in points:
        mask[point] = True
    return mask


def _blocks():
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[1:3, 1:3, 1:3] = 2  # 8 voxels
    labels[6, 6, 6] = 4  # 1 voxel, not touching the block
    return labels


def _random_mask(rng, shape=(9, 11)):
    mask = rng.random(shape) > 0.7
    mask[rng.integers(shape[0]), rng.integers(shape[1])] = True  # never empty
    return mask


def _random_soft_mask(rng, size=16):
    mask = torch.zeros(1, 1, size, size)
    r, c, h, w = (int(v) for v in rng.integers(2, size // 2, 4))
    mask[0, 0, r : r + h, c : c + w] = torch.from_numpy(rng.uniform(0.3, 1.0, (h, w))).float()[: size - r, : size - c]
    return mask


EXERCISES: dict[str, Exercise] = {
    e.key: e
    for e in (
        Exercise(
            "01.1",
            "bounding_box",
            title="the smallest box around a mask",
            reference=_ref_bounding_box,
            cases=(
                Case(
                    (_mask((5, 6), (1, 2), (3, 4)),),
                    (slice(1, 4), slice(2, 5)),
                    "pixels at (1, 2) and (3, 4): rows 1..3, columns 2..4, stops one past",
                ),
                Case((_mask((3, 3, 3), (2, 0, 1)),), (slice(2, 3), slice(0, 1), slice(1, 2)), "one voxel in 3D"),
            ),
            random_args=lambda rng: (_random_mask(rng),),
        ),
        Exercise(
            "01.2",
            "region_masks",
            title="the evaluation regions WT, TC, ET from a label map",
            reference=_ref_region_masks,
            cases=(
                Case(
                    (np.array([0, 1, 2, 4]),),
                    {
                        "WT": np.array([False, True, True, True]),
                        "TC": np.array([False, True, False, True]),
                        "ET": np.array([False, False, False, True]),
                    },
                    "labels 0, 1, 2, 4: WT = 1+2+4, TC = 1+4, ET = 4",
                ),
            ),
            random_args=lambda rng: (rng.choice(np.array([0, 1, 2, 4], np.uint8), (4, 5, 3)),),
        ),
        Exercise(
            "02.1",
            "enhance_slice",
            title="the enhancement, Eqs. (13)-(17)",
            reference=_ref_enhance,
            cases=(
                Case((np.zeros((2, 3)),), np.zeros((2, 3)), "a constant slice has nothing to stretch: all zeros"),
                Case(
                    (np.array([[0.0, 1.0]]),),
                    np.array([[0.0, 1.0]]),
                    "the curve is monotone and Eq. (17) rescales: the ends stay 0 and 1",
                ),
                Case((np.array([[0.0, 0.5, 1.0]]),), None, "0.5 is brightened to about 0.81 (lambda -0.8)"),
            ),
            random_args=lambda rng: (rng.random((6, 7)) * 3.0, -0.8),
            tolerance=1e-4,
        ),
        Exercise(
            "02.2",
            "minmax_slices",
            title="per-slice min-max scaling (the first step, and Eq. 17)",
            reference=_ref_minmax,
            cases=(
                Case(
                    (np.array([[2.0, 4.0], [6.0, 8.0]]),), np.array([[0.0, 1 / 3], [2 / 3, 1.0]]), "(x - 2) / (8 - 2)"
                ),
                Case((np.array([[5.0, 5.0]]),), np.array([[0.0, 0.0]]), "a constant slice: zeros, not NaN"),
                Case(
                    (np.array([[[0.0, 2.0]], [[1.0, 3.0]]]),),
                    np.array([[[0.0, 1.0]], [[0.0, 1.0]]]),
                    "two slices, each scaled on its own",
                ),
            ),
            random_args=lambda rng: (rng.normal(size=(3, 4, 5)),),
        ),
        Exercise(
            "03.1",
            "fake_patches",
            title="which discriminator patches see the hole",
            reference=_ref_fake_patches,
            cases=(
                Case(
                    (torch.tensor([[[[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]]]), (2, 2)),
                    torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]),
                    "a one-pixel hole in the top-left 2 x 2 patch",
                ),
                Case((torch.zeros(1, 1, 4, 4), (2, 2)), torch.zeros(1, 1, 2, 2), "no hole: no fake patch"),
            ),
            random_args=lambda rng: (
                torch.from_numpy(_random_mask(rng, (10, 10))[None, None].astype(np.float32)),
                (3, 3),
            ),
        ),
        Exercise(
            "03.2",
            "discriminator_loss",
            title="the discriminator's loss, Eq. (1), from logits",
            reference=_ref_discriminator_loss,
            cases=(
                Case(
                    (torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)),
                    torch.tensor(2 * np.log(2.0)),
                    "D undecided (logit 0, D = 0.5) everywhere: log 2 + log 2",
                ),
                Case(
                    (torch.full((1, 1, 1, 2), 20.0), torch.tensor([[[[-20.0, 20.0]]]]), torch.tensor([[[[1.0, 0.0]]]])),
                    torch.tensor(0.0),
                    "D sure and right everywhere (the right patch shows real tissue): about 0",
                ),
            ),
            random_args=lambda rng: (
                torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(int(rng.integers(1000)))),
                torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(int(rng.integers(1000)))),
                torch.from_numpy((rng.random((2, 1, 3, 3)) > 0.5).astype(np.float32)),
            ),
            tolerance=1e-4,
        ),
        Exercise(
            "04.1",
            "edge_map",
            title="the mask's edge map, Eqs. (11)-(12), pooled to D's grid",
            reference=_ref_edge_map,
            cases=(
                Case((torch.zeros(1, 1, 8, 8), (2, 2)), torch.zeros(1, 1, 2, 2), "an empty mask has no edge"),
                Case(
                    (torch.ones(1, 1, 8, 8), (2, 2)),
                    torch.zeros(1, 1, 2, 2),
                    "a full mask has no edge either (the border is padded by replication)",
                ),
                Case(
                    (torch.nn.functional.pad(torch.ones(1, 1, 2, 2), (5, 5, 5, 5)), (1, 1)),
                    None,
                    "a 2 x 2 square grows to 6 x 6 by the 5 x 5 max-pool; |Laplacian| is 1 along its sides, 2 at its "
                    "corners",
                ),
            ),
            random_args=lambda rng: (_random_soft_mask(rng), (4, 4)),
        ),
        Exercise(
            "04.2",
            "l_adv",
            title="the adversarial term, Eq. (7): -log D weighted by the edges",
            reference=_ref_l_adv,
            cases=(
                Case(
                    (torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 0.0], [0.0, 3.0]]]])),
                    torch.tensor(np.log(2.0)),
                    "D = 0.5 everywhere: -log 0.5, whatever the weights",
                ),
                Case(
                    (torch.tensor([[[[0.0, 50.0]]]]), torch.tensor([[[[0.0, 1.0]]]])),
                    torch.tensor(0.0),
                    "the only weighted patch looks normal (D about 1): about 0",
                ),
                Case(
                    (torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)),
                    torch.tensor(0.0),
                    "no edge at all: 0, not 0 / 0",
                ),
            ),
            random_args=lambda rng: (
                torch.from_numpy(rng.normal(size=(2, 1, 3, 3))).float(),
                torch.from_numpy(rng.random((2, 1, 3, 3))).float(),
            ),
            tolerance=1e-4,
        ),
        Exercise(
            "04.3",
            "dynamic_weights",
            title="the dynamic weights, Eq. (10), normalised so that lambda_seg = 1",
            reference=_ref_dynamic_weights,
            cases=(
                Case(
                    ({"seg": 1.0, "adv": 0.5}, 0.0),
                    {"seg": 1.0, "adv": 2.0},
                    "half the gradient norm: twice the weight",
                ),
                Case(
                    ({"seg": 2.0, "size": 4.0, "sparsity": 1.0}, 0.0),
                    {"seg": 1.0, "size": 0.5, "sparsity": 2.0},
                    "each 1 / norm, divided by seg's",
                ),
            ),
            random_args=lambda rng: (
                {
                    "seg": float(rng.uniform(0.1, 2)),
                    "adv": float(rng.uniform(0, 2)),
                    "size": float(rng.uniform(0.1, 2)),
                },
                1e-8,
            ),
        ),
        Exercise(
            "04.4",
            "soft_dice_loss",
            title="the soft Dice loss, Eq. (4), per tumour class over the batch",
            reference=_ref_dice_loss,
            cases=(
                Case(
                    (torch.zeros(1, 4, 2, 2), torch.ones(1, 2, 2, dtype=torch.long)),
                    torch.tensor(0.5),
                    "p = 0.25 for every class; class 1: (2 x 1 + 1) / (1 + 4 + 1) = 0.5; classes 2 and 3: (0 + 1) / "
                    "(1 + 0 + 1) = 0.5; loss 1 - 0.5",
                ),
            ),
            random_args=lambda rng: (
                torch.from_numpy(rng.normal(size=(2, 4, 5, 5))).float(),
                torch.from_numpy(rng.integers(0, 4, (2, 5, 5))),
            ),
            tolerance=1e-4,
        ),
        Exercise(
            "05.1",
            "sensitivity_specificity",
            title="sensitivity and specificity of 'score <= threshold = tumour'",
            reference=_ref_sensitivity_specificity,
            cases=(
                Case(
                    (np.array([0.1, 0.2, 0.8, 0.9]), np.array([True, False, True, False]), 0.5),
                    (0.5, 0.5),
                    "called tumour: the first two; TP 1, FN 1, FP 1, TN 1",
                ),
                Case(
                    (np.array([0.1, 0.2, 0.3]), np.array([True, True, False]), 0.25), (1.0, 1.0), "a perfect threshold"
                ),
            ),
            random_args=lambda rng: (rng.random(30), rng.random(30) > 0.5, float(rng.random())),
        ),
        Exercise(
            "05.2",
            "roc_auc",
            title="the ROC AUC from scores (ties count half)",
            reference=_ref_roc_auc,
            cases=(
                Case(
                    (np.array([1.0, 2.0, 3.0, 4.0]), np.array([False, False, True, True])),
                    1.0,
                    "every positive above every negative",
                ),
                Case(
                    (np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])),
                    0.75,
                    "3 of the 4 (positive, negative) pairs are in order",
                ),
                Case((np.array([1.0, 1.0]), np.array([True, False])), 0.5, "a tie counts half"),
            ),
            random_args=lambda rng: (rng.integers(0, 6, 25).astype(float), np.r_[True, False, rng.random(23) > 0.5]),
        ),
        Exercise(
            "05.3",
            "centre_closeness",
            title="the slice-position covariate: closeness to the brain-centre slice",
            reference=_ref_centre_closeness,
            cases=(
                Case(
                    (np.array([0.0, 2.0, 4.0, 2.0, 0.0, 0.0]),),
                    np.array([-2 / 3, -1 / 3, 0.0, -1 / 3, -2 / 3, -1.0]),
                    "centre (1x2 + 2x4 + 3x2) / 8 = 2; 3 slices with brain: -|z - 2| / 3",
                ),
            ),
            random_args=lambda rng: (np.r_[0.0, rng.integers(1, 50, 8).astype(float), 0.0],),
        ),
        Exercise(
            "06.1",
            "dice",
            title="Dice of two masks, with the empty-mask rules",
            reference=_ref_dice,
            cases=(
                Case((np.array([True, True, False]), np.array([True, False, False])), 2 / 3, "2 x 1 / (2 + 1)"),
                Case((np.zeros(3, bool), np.zeros(3, bool)), 1.0, "both empty: 1"),
                Case((np.zeros(3, bool), np.array([True, False, False])), 0.0, "one empty: 0"),
            ),
            random_args=lambda rng: (rng.random((6, 6)) > 0.5, rng.random((6, 6)) > 0.5),
        ),
        Exercise(
            "06.2",
            "remove_small_components",
            title="removing whole-tumour components below a volume in mm^3",
            reference=_ref_remove_small_components,
            cases=(
                Case(
                    (_blocks(), 5.0, (1.0, 1.0, 1.0)),
                    np.where(_blocks() == 2, 2, 0).astype(np.uint8),
                    "the 1-voxel component (1 mm^3) goes, the 8-voxel one stays",
                ),
                Case(
                    (_blocks(), 5.0, (2.0, 2.0, 2.0)), _blocks(), "at 2 mm voxels the single voxel is 8 mm^3: it stays"
                ),
            ),
            random_args=lambda rng: (
                rng.choice(np.array([0, 0, 0, 0, 1, 2, 4], np.uint8), (7, 7, 7)),
                float(rng.uniform(1, 6)),
                (1.0, 1.0, 1.0),
            ),
        ),
        Exercise(
            "06.3",
            "lesion_wise_dice",
            title="the lesion-wise Dice from the lesions' Dice and the false positives",
            reference=_ref_lesion_wise_dice,
            cases=(
                Case(
                    ([0.9, 0.0], 1),
                    0.3,
                    "SPEC's worked example: lesion A 0.9, lesion B missed (0), one false positive: 0.9 / 3",
                ),
                Case(([], 0), 1.0, "nothing to count: 1"),
                Case(([], 2), 0.0, "only false positives: 0"),
            ),
            random_args=lambda rng: (list(rng.random(int(rng.integers(1, 4)))), int(rng.integers(0, 3))),
        ),
    )
}


# --- the check ---------------------------------------------------------------------------------------------


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


def same(expected, received, tolerance: float = 1e-5) -> bool:
    """Whether `received` equals `expected`: arrays and tensors elementwise (close for floats, same
    shape), dicts key by key, tuples and lists item by item, numbers to the tolerance."""
    expected, received = _plain(expected), _plain(received)
    if isinstance(expected, dict):
        return (
            isinstance(received, dict)
            and set(expected) == set(received)
            and all(same(expected[k], received[k], tolerance) for k in expected)
        )
    if isinstance(expected, (tuple, list)) and not isinstance(expected, np.ndarray):
        return (
            isinstance(received, (tuple, list))
            and len(expected) == len(received)
            and all(same(e, r, tolerance) for e, r in zip(expected, received))
        )
    if isinstance(expected, slice):
        return isinstance(received, slice) and (expected.start, expected.stop, expected.step or 1) == (
            received.start,
            received.stop,
            received.step or 1,
        )
    try:
        expected_array, received_array = np.asarray(expected), np.asarray(received)
    except Exception:
        return False
    if expected_array.shape != received_array.shape:
        return False
    if expected_array.dtype == bool or received_array.dtype == bool:
        return (
            bool(np.array_equal(expected_array.astype(bool), received_array.astype(bool)))
            if received_array.dtype.kind in "bui"
            else False
        )
    try:
        return bool(
            np.allclose(
                received_array.astype(float),
                expected_array.astype(float),
                rtol=tolerance,
                atol=tolerance,
                equal_nan=True,
            )
        )
    except (TypeError, ValueError):
        return False


def _show(value, limit: int = 160) -> str:
    value = _plain(value)
    if isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, threshold=24, separator=", ").replace("\n", "")
        text = f"array{value.shape} {text}"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k!r}: {_show(v, 60)}" for k, v in value.items()) + "}"
    elif isinstance(value, (tuple, list)):
        text = (
            ("(" if isinstance(value, tuple) else "[")
            + ", ".join(_show(v, 60) for v in value)
            + (")" if isinstance(value, tuple) else "]")
        )
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _copy(args: tuple) -> tuple:
    """Fresh copies of the inputs, so that a function that changes its input cannot change the expectation."""
    return tuple(
        a.clone() if isinstance(a, torch.Tensor) else a.copy() if isinstance(a, (np.ndarray, dict, list)) else a
        for a in args
    )


def run_check(key: str, function: Callable, random_cases: int = 3) -> tuple[str, str]:
    """(outcome, message) of `function` against exercise `key`; prints nothing."""
    exercise = EXERCISES[key]
    label = f"Exercise {key} ({exercise.name}, {exercise.title})"
    cases = [(case.args, case.expected, case.note or "a hand-made case") for case in exercise.cases]
    if exercise.random_args is not None:
        rng = np.random.default_rng(int(key.replace(".", "")))
        cases += [
            (args, None, "a random input, against the library's reference")
            for args in (exercise.random_args(rng) for _ in range(random_cases))
        ]
    for args, expected, note in cases:
        wanted = exercise.reference(*_copy(args)) if expected is None else expected
        try:
            received = function(*_copy(args))
        except NotImplementedError:
            return NOT_ATTEMPTED, f"{label}: not attempted yet. Write the function above, then run this cell again."
        except Exception as exc:  # the student's code raised: show where, as a failure
            return FAILED, (
                f'{label}: failed on the case "{note}": input {_show(args)} raised {type(exc).__name__}: {exc}. '
                "See the hint below the exercise."
            )
        if not same(wanted, received, exercise.tolerance):
            return FAILED, (
                f'{label}: failed on the case "{note}": input {_show(args)}, expected {_show(wanted)}, received '
                f"{_show(received)}. "
                "See the hint below the exercise."
            )
    return (
        PASSED,
        f"{label}: passed ({len(cases)} cases: {len(exercise.cases)} worked out by hand, "
        f"{len(cases) - len(exercise.cases)} against the library).",
    )


def check(key: str, function: Callable) -> str:
    """Check a student's `function` for exercise `key` and print the outcome; returns it (never raises)."""
    outcome, message = run_check(key, function)
    print(("PASSED  " if outcome == PASSED else "TODO    " if outcome == NOT_ATTEMPTED else "FAILED  ") + message)
    return outcome
