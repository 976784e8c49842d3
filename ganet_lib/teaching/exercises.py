"""The notebooks' exercises: hand-computable cases, the library reference, and the check a student runs.

Each exercise asks for one key step of the method as a function. `check(key, function)` calls the
student's function on cases a person can work out by hand (their `note` says how), then on a few
random inputs against the library function the pipeline itself uses (`reference`), and prints one
of three outcomes:

- `passed`;
- `not attempted yet` (the stub still raises NotImplementedError), so a student edition runs
  headlessly from top to bottom without an error;
- `failed`, with the input, what differs (arrays summarised: shapes, how many elements differ,
  the first with both values, the largest difference), the classic mistake a hand case was built
  to catch, the student's own line when their code raised, and a pointer to the hint. A random
  input that fails is rerun made simpler in one respect (`Probe`: cropped to a multiple of the grid,
  one image of the batch, ...); a function right there is told what it gets wrong.

A check cannot be fooled by what would break the pipeline: a torch exercise must return a tensor
that keeps the gradient, a loss must stay finite at logits of +-100, a function that hands back the
library's implementation is not a solution, and every check stops after 20 s ("a loop that never
ends?") instead of hanging the cell.

After an exercise, `use(key, function, my_code)` gives the cells that follow the student's function
once its check passed, and the library's otherwise (saying which), so a notebook always runs and a
student's correct lines run the method. The student edition (`student.py`) is written
from the solution notebooks.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganet_lib.data.labels import BRATS, LabelScheme
from ganet_lib.evaluation.metrics import dice, lesion_wise_means, roc_auc
from ganet_lib.evaluation.postprocess import PostProcessing
from ganet_lib.evaluation.surface import bounding_box
from ganet_lib.method.enhance import enhancement_steps, minmax_per_slice
from ganet_lib.method.losses import dice_loss, discriminator_loss, edge_map, edge_weighted_adversarial, patch_targets
from ganet_lib.method.train_seg import inverse_norm_weights
from ganet_lib.studies.detector import sweep_table
from ganet_lib.studies.position import position_covariates
from ganet_lib.teaching import sandbox

PASSED, NOT_ATTEMPTED, FAILED, TIMED_OUT = "passed", "not attempted yet", "failed", "timed out"
TIME_LIMIT_S = 20.0  # per check: a student's loop that never ends fails instead of hanging the cell
HIDDEN_CASES = 5  # random inputs of a grading check (`require`, `ganet grade`), drawn from the grading seed
GRADING_SEED = "GANET_GRADING_SEED"  # the environment variable nbgrader's autograde can set (default 0)


@dataclass(frozen=True)
class Case:
    args: tuple
    expected: Any = None  # the hand-worked answer; None: the reference's (the note says what to expect)
    note: str = ""
    mistake: str = ""  # the classic mistake this case tells apart, named in the failure message


@dataclass(frozen=True)
class Probe:
    """A rerun that tells what differs when a function fails on a random input: the same input made
    simpler in one respect (`derive` gives its arguments from a copy of the random input's, which it may
    keep, or None where it would not be simpler). A function right on the simpler input is wrong only in
    that respect, which `says` names."""

    derive: Callable[[tuple], tuple | None]
    input: str  # the simpler input, in words: "the same mask cropped to a multiple of the grid"
    says: str  # "it goes wrong ...: <the property>", what the simpler input leaves out


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
    # The library functions that are the answer: a student's function that calls them is not a solution.
    implemented_by: tuple[Callable, ...] = ()
    # Positions of the float tensor inputs the result must stay differentiable in (the training needs it).
    gradient_args: tuple[int, ...] = ()
    time_limit_s: float = TIME_LIMIT_S
    points: float = 1.0  # what `ganet grade` and nbgrader's metadata give a passed check
    # Positions of logit inputs, and the advice for a result that is not finite at large logits there.
    logits_at: tuple[int, ...] = ()
    overflow_advice: str = ""
    probes: tuple[Probe, ...] = ()  # reruns of each random input, to say what differs when it fails


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


LOGSIGMOID_ADVICE = (
    "log(sigmoid(x)) is log 0 at large negative logits: use F.logsigmoid or F.softplus, which stay finite."
)


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


def _confident(classes, logit: float) -> torch.Tensor:
    """(B, 4, H, W) logits: `logit` for the class of each pixel of `classes` (B, H, W), 0 elsewhere."""
    return torch.nn.functional.one_hot(torch.tensor(classes), 4).permute(0, 3, 1, 2).float() * logit


def _corners():
    labels = np.zeros((3, 3, 3), np.uint8)
    labels[0, 0, 0] = labels[1, 1, 1] = 2  # they share a corner only
    return labels


NOT_A_MULTIPLE = (
    "the image is split as adaptive pooling splits it (patch i covers rows floor(i H / h) to ceil((i + 1) H / h)); "
    "a fixed kernel of H // h is right only where H is a multiple of h"
)


def _profile_hole(size: int) -> torch.Tensor:
    """(1, 1, size, size) hole mask in {0, 1}: a rectangle, as the GAN's holes are, off the patch grid."""
    mask = torch.zeros(1, 1, size, size)
    mask[0, 0, size // 3 : size // 3 + size // 5, size // 2 + 1 : size - 3] = 1.0
    return mask


def _profile_soft_mask(size: int) -> torch.Tensor:
    """(1, 1, size, size) soft mask: a blob of probabilities near the border of a patch of the grid."""
    rng = np.random.default_rng(size)
    mask = torch.zeros(1, 1, size, size)
    r, c = size // 4 + 1, size // 2 - 3
    mask[0, 0, r : r + size // 4, c : c + size // 3] = torch.from_numpy(rng.uniform(0.3, 1.0, (size // 4, size // 3)))
    return mask


def _profile_sizes(mask_of_size) -> tuple[Case, ...]:
    """Cases at the profiles' image and patch-grid sizes (smoke 32 -> 2, default 64 -> 6, paper 128 -> 14),
    two of which do not divide, with the reference's answers; `mask_of_size(n)` makes the (1, 1, n, n) input."""
    return (
        Case((mask_of_size(32), (2, 2)), None, "the smoke profile's sizes: 32 x 32 to 2 x 2 patches"),
        Case(
            (mask_of_size(64), (6, 6)),
            None,
            "the default profile's sizes: 64 x 64 to 6 x 6 patches (64 is not a multiple of 6)",
            mistake=NOT_A_MULTIPLE,
        ),
        Case(
            (mask_of_size(128), (14, 14)),
            None,
            "the paper profile's sizes: 128 x 128 to 14 x 14 patches",
            mistake=NOT_A_MULTIPLE,
        ),
    )


def _random_mask(rng, shape=(9, 11)):
    mask = rng.random(shape) > 0.7
    mask[rng.integers(shape[0]), rng.integers(shape[1])] = True  # never empty
    return mask


def _random_soft_mask(rng, size=16):
    mask = torch.zeros(1, 1, size, size)
    r, c, h, w = (int(v) for v in rng.integers(2, size // 2, 4))
    mask[0, 0, r : r + h, c : c + w] = torch.from_numpy(rng.uniform(0.3, 1.0, (h, w))).float()[: size - r, : size - c]
    return mask


def _scores_and_threshold(rng) -> tuple:
    """30 scores with random labels, and a threshold that is one of the scores half the time."""
    scores = rng.random(30)
    threshold = float(scores[rng.integers(30)]) if rng.random() < 0.5 else float(rng.random())
    return scores, rng.random(30) > 0.5, threshold


def _random_grid(rng) -> tuple[int, int]:
    return int(rng.integers(2, 6)), int(rng.integers(2, 6))


# --- reruns that say what differs when a random input fails ------------------------------------------------


def _cropped_to_the_grid(args: tuple) -> tuple | None:
    """The mask cropped to the largest multiple of the grid, or None where it already is one."""
    mask, (h, w) = args[0], args[1]
    rows, columns = mask.shape[-2] // h * h, mask.shape[-1] // w * w
    if (rows, columns) == tuple(mask.shape[-2:]):
        return None
    return (mask[..., :rows, :columns].contiguous(), *args[1:])


def _first_image(args: tuple) -> tuple | None:
    """The batch's first image alone, or None for a batch of one."""
    if args[0].shape[0] < 2:
        return None
    return tuple(a[:1] for a in args)


def _scaled_to_unit(args: tuple) -> tuple | None:
    image = np.asarray(args[0], float)
    span = float(image.max() - image.min())
    if span == 0 or (image.min(), image.max()) == (0.0, 1.0):
        return None
    return ((image - image.min()) / span, *args[1:])


def _first_slice(args: tuple) -> tuple | None:
    images = np.asarray(args[0])
    return (images.reshape(-1, *images.shape[-2:])[0],) if images.ndim > 2 else None


def _threshold_off_the_scores(args: tuple) -> tuple | None:
    """The threshold moved up to halfway to the next score, where it equals a score: every score is
    called as before by 'score <= threshold', but none equals the threshold any more."""
    scores, positive, threshold = args
    if not np.any(scores == threshold):
        return None
    above = scores[scores > threshold]
    return scores, positive, float((threshold + above.min()) / 2 if above.size else threshold + 1.0)


def _ties_broken(args: tuple) -> tuple | None:
    """Integer scores with the ties broken by offsets below 1 (the order of unequal scores is kept)."""
    scores, positive = args
    if np.unique(scores).size == scores.size:
        return None
    return scores + np.linspace(0.0, 0.5, scores.size), positive


def _without_empty_ends(args: tuple) -> tuple | None:
    areas = np.asarray(args[0])
    brain = np.flatnonzero(areas)
    if brain.size == 0 or (brain[0], brain[-1]) == (0, areas.size - 1):
        return None
    return (areas[brain[0] : brain[-1] + 1],)


def _at_one_mm(args: tuple) -> tuple | None:
    """1 mm voxels with min_mm3 in voxels: the same components stay (up to rounding at the threshold)."""
    labels, min_mm3, spacing = args
    volume = float(np.prod(spacing))
    return None if volume == 1.0 else (labels, min_mm3 / volume, (1.0, 1.0, 1.0))


def _one_label(args: tuple) -> tuple | None:
    labels = args[0]
    if np.unique(labels[labels > 0]).size < 2:
        return None
    return (np.where(labels > 0, 2, 0).astype(labels.dtype), *args[1:])


def _no_false_positives(args: tuple) -> tuple | None:
    return None if args[1] == 0 else (list(args[0]), 0)


ONLY_WHERE_NOT_A_MULTIPLE = Probe(
    _cropped_to_the_grid,
    "the same mask cropped to a multiple of the grid",
    f"it goes wrong only where the size is not a multiple of the grid: {NOT_A_MULTIPLE}",
)


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
            implemented_by=(bounding_box,),
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
            implemented_by=(LabelScheme.region_mask,),
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
            implemented_by=(enhancement_steps,),
            probes=(
                Probe(
                    _scaled_to_unit,
                    "the same slice already scaled to [0, 1]",
                    "it misses the first step: Eq. (13) starts from the slice min-max scaled to [0, 1]",
                ),
            ),
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
            implemented_by=(minmax_per_slice,),
            probes=(
                Probe(
                    _first_slice,
                    "the first slice alone",
                    "it goes wrong on a stack: each slice is scaled by its own minimum and maximum (the last two axes)",
                ),
            ),
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
                *_profile_sizes(_profile_hole),
            ),
            random_args=lambda rng: (
                torch.from_numpy(_random_mask(rng, tuple(rng.integers(8, 21, 2)))[None, None].astype(np.float32)),
                _random_grid(rng),
            ),
            implemented_by=(patch_targets,),
            probes=(ONLY_WHERE_NOT_A_MULTIPLE,),
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
                Case(
                    (torch.tensor([[[[-100.0, 100.0]]]]), torch.tensor([[[[100.0, -100.0]]]]), torch.ones(1, 1, 1, 2)),
                    torch.tensor(100.0),
                    "logits of +-100, D sure and wrong on one real and one fake patch: 100 / 2 + 100 / 2",
                    mistake="log(sigmoid(x)) is -inf at a logit of -100; binary_cross_entropy_with_logits is not",
                ),
            ),
            random_args=lambda rng: (
                torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(int(rng.integers(1000)))),
                torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(int(rng.integers(1000)))),
                torch.from_numpy((rng.random((2, 1, 3, 3)) > 0.5).astype(np.float32)),
            ),
            tolerance=1e-4,
            implemented_by=(discriminator_loss,),
            gradient_args=(0, 1),
            logits_at=(0, 1),
            overflow_advice=LOGSIGMOID_ADVICE,
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
                *_profile_sizes(_profile_soft_mask),
            ),
            random_args=lambda rng: (_random_soft_mask(rng, int(rng.integers(12, 25))), _random_grid(rng)),
            implemented_by=(edge_map,),
            gradient_args=(0,),
            probes=(ONLY_WHERE_NOT_A_MULTIPLE,),
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
                Case(
                    (torch.tensor([[[[-120.0, 100.0]]]]), torch.tensor([[[[1.0, 1.0]]]])),
                    torch.tensor(60.0),
                    "logits -120 and 100: -log D is 120 and about 0; the weighted mean is 60",
                    mistake="-torch.log(torch.sigmoid(x)) is infinite at a logit of -120 (F.logsigmoid or F.softplus "
                    "are not)",
                ),
            ),
            random_args=lambda rng: (
                torch.from_numpy(rng.normal(size=(2, 1, 3, 3))).float(),
                torch.from_numpy(rng.random((2, 1, 3, 3))).float(),
            ),
            tolerance=1e-4,
            implemented_by=(edge_weighted_adversarial,),
            gradient_args=(0, 1),  # the training differentiates through both: D's logits and the edges of the mask
            logits_at=(0,),
            overflow_advice=LOGSIGMOID_ADVICE,
            probes=(
                Probe(
                    _first_image,
                    "the batch's first image alone",
                    "it goes wrong on a batch: the weighted mean runs over all the batch's patches at once (one sum "
                    "of E x -log D over one sum of E), not image by image",
                ),
            ),
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
                Case(
                    ({"seg": 1.0, "adv": 0.0}, 1e-8),
                    {"seg": 1.0, "adv": (1.0 + 1e-8) / 1e-8},
                    "a term constant in the batch has gradient norm 0: 1 / (0 + eps), finite",
                    mistake="eps is there for a zero gradient norm: 1 / (norm + eps), not 1 / norm",
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
            implemented_by=(inverse_norm_weights,),
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
                Case(
                    (_confident([[[1, 0]], [[0, 0]]], 50.0), torch.tensor([[[1, 1]], [[0, 0]]])),
                    torch.tensor(1 / 12),
                    "two images; image A: truth 1 1, prediction 1 0; image B all background. Sums over the batch, "
                    "class 1: (2 x 1 + 1) / (1 + 2 + 1) = 3/4; classes 2, 3: (0 + 1) / (0 + 0 + 1) = 1; "
                    "loss 1 - (3/4 + 1 + 1) / 3 = 1/12",
                    mistake="the right loss leaves the background out and sums over the whole batch; with the "
                    "background in it is 0.1042, summed per image 0.0417",
                ),
                Case(
                    (_confident([[[1, 0]], [[0, 0]]], 100.0), torch.tensor([[[1, 1]], [[0, 0]]])),
                    torch.tensor(1 / 12),
                    "the same with logits of 100: the same 1/12",
                    mistake="exp(100) overflows float32; softmax subtracts the largest logit first",
                ),
            ),
            random_args=lambda rng: (
                torch.from_numpy(rng.normal(size=(2, 4, 5, 5))).float(),
                torch.from_numpy(rng.integers(0, 4, (2, 5, 5))),
            ),
            tolerance=1e-4,
            implemented_by=(dice_loss,),
            gradient_args=(0,),
            logits_at=(0,),
            overflow_advice="exp() of a large logit overflows float32: softmax subtracts the largest logit first.",
            probes=(
                Probe(
                    _first_image,
                    "the batch's first image alone",
                    "it goes wrong on a batch: the sums run over all the batch's images before the ratio is taken, "
                    "not image by image",
                ),
            ),
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
                Case(
                    (np.array([0.5, 0.7]), np.array([True, False]), 0.5),
                    (1.0, 1.0),
                    "a score equal to the threshold is called tumour: 0.5 <= 0.5",
                    mistake="'score <= threshold' includes the threshold itself (< leaves it out)",
                ),
            ),
            random_args=_scores_and_threshold,
            implemented_by=(sweep_table,),
            probes=(
                Probe(
                    _threshold_off_the_scores,
                    "the same scores with the threshold moved off them",
                    "it goes wrong where a score equals the threshold: 'score <= threshold' calls it tumour",
                ),
            ),
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
                Case(
                    (np.array([1.0, 1.0]), np.array([True, False])),
                    0.5,
                    "a tie counts half",
                    mistake="a positive and a negative with the same score count half a pair in order, not 0",
                ),
            ),
            random_args=lambda rng: (rng.integers(0, 6, 25).astype(float), np.r_[True, False, rng.random(23) > 0.5]),
            implemented_by=(roc_auc,),
            probes=(
                Probe(
                    _ties_broken,
                    "the same scores with the ties broken",
                    "it goes wrong on the ties: a positive and a negative with the same score count half a pair in "
                    "order",
                ),
            ),
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
                Case(
                    (np.array([0.0, 1.0, 1.0, 6.0, 0.0]),),
                    np.array([-7 / 8, -13 / 24, -5 / 24, -1 / 8, -11 / 24]),
                    "centre weighted by area (1x1 + 2x1 + 3x6) / 8 = 2.625; 3 slices with brain: -|z - 2.625| / 3",
                    mistake="the centre is the area-weighted mean slice, not the middle of the slices with brain (2)",
                ),
            ),
            random_args=lambda rng: (np.r_[0.0, rng.integers(1, 50, 8).astype(float), 0.0],),
            implemented_by=(position_covariates,),
            probes=(
                Probe(
                    _without_empty_ends,
                    "the same areas without the empty slices at the ends",
                    "it goes wrong on the empty slices: z counts every slice of the volume, but the extent only "
                    "those with brain",
                ),
            ),
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
            implemented_by=(dice,),
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
                Case(
                    (_corners(), 1.5, (1.0, 1.0, 1.0)),
                    _corners(),
                    "two voxels touching only at a corner are one component of 2 mm^3: it stays",
                    mistake="components are 26-connected, as in the BraTS evaluation (6-connected, each voxel is "
                    "1 mm^3 alone and goes)",
                ),
                Case(
                    (_blocks(), 8.0, (1.0, 1.0, 1.0)),
                    np.where(_blocks() == 2, 2, 0).astype(np.uint8),
                    "a component of exactly min_mm3 (the 8-voxel block, 8 mm^3) stays; only smaller ones go",
                    mistake="the rule removes components below min_mm3 (volume < min_mm3); <= also removes one of "
                    "exactly min_mm3",
                ),
            ),
            random_args=lambda rng: (
                rng.choice(np.array([0] * 9 + [1, 2, 4], np.uint8), (7, 7, 7)),
                float(rng.uniform(1, 6)),
                ((1.0, 1.0, 1.0), (1.0, 1.0, 2.0), (0.5, 0.5, 1.0), (0.9, 0.9, 3.0))[int(rng.integers(4))],
            ),
            implemented_by=(PostProcessing.apply,),
            probes=(
                Probe(
                    _at_one_mm,
                    "the same labels at 1 mm voxels (min_mm3 in voxels)",
                    "it leaves out the spacing: a component's volume is its voxel count times the voxel's volume "
                    "(the product of the spacing)",
                ),
                Probe(
                    _one_label,
                    "the same tumour as one label",
                    "it goes wrong with several labels: the components are those of the whole tumour (every label "
                    "> 0 together), and a kept component keeps its labels",
                ),
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
                    "lesion A found with Dice 0.9, lesion B missed (0), one false positive: (0.9 + 0 + 0) / 3",
                ),
                Case(([], 0), 1.0, "nothing to count: 1"),
                Case(([], 2), 0.0, "only false positives: 0"),
            ),
            random_args=lambda rng: (list(rng.random(int(rng.integers(1, 4)))), int(rng.integers(0, 3))),
            implemented_by=(lesion_wise_means,),
            probes=(
                Probe(
                    _no_false_positives,
                    "the same lesions without false positives",
                    "it leaves out the false positives: each counts as one more lesion, with Dice 0",
                ),
            ),
        ),
    )
}


# --- the check ---------------------------------------------------------------------------------------------

PACKAGE_DIR = Path(__file__).resolve().parents[1]


class CheckTimeout(BaseException):
    """Raised inside a student's function when its check runs out of time. A BaseException, so that a
    student's `except Exception` cannot swallow it."""


@contextmanager
def time_limit(seconds: float):
    """Raise `CheckTimeout` in the block after `seconds` (SIGALRM: the main thread of a Linux or macOS
    process, which is where a Jupyter kernel and papermill run a cell; elsewhere no limit)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise CheckTimeout

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def calls_to(functions: tuple[Callable, ...]):
    """Record which of `functions` (Python functions) are called in the block: yields a set that
    fills with their names."""
    codes = {inspect.unwrap(f).__code__: f.__qualname__ for f in functions if hasattr(inspect.unwrap(f), "__code__")}
    called: set[str] = set()
    previous = sys.getprofile()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            called.add(codes[frame.f_code])

    sys.setprofile(profile)
    try:
        yield called
    finally:
        sys.setprofile(previous)


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


def _kind(value) -> str:
    """'tensor (2, 3) float32', 'array (4,) bool', 'float', ...: what a value is, in a few words."""
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, np.ndarray):
        return f"array {value.shape} {value.dtype}"
    return type(value).__name__


def _show(value, limit: int = 160) -> str:
    """A value in one line: small arrays in full, larger ones summarised (shape, dtype, range), never a
    truncated dump."""
    value = _plain(value)
    if isinstance(value, np.generic) or isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()  # a numpy or 0-d number: shown as the number it is
    if isinstance(value, np.ndarray):
        if value.size <= 12:
            text = np.array2string(value, precision=4, separator=", ").replace("\n", "")
            text = f"array{value.shape} {text}"
        elif value.dtype == bool:
            text = f"array{value.shape} bool with {int(value.sum())} True"
        else:
            text = f"array{value.shape} {value.dtype} from {value.min():.4g} to {value.max():.4g}"
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


def difference(expected, received, tolerance: float = 1e-5) -> str:
    """What differs between two values, for a student: for arrays the shapes and dtypes, how many
    elements differ, the first one with both values and the largest difference."""
    expected_plain, received_plain = _plain(expected), _plain(received)
    if isinstance(expected_plain, dict) and isinstance(received_plain, dict):
        if set(expected_plain) != set(received_plain):
            return f"expected the keys {sorted(expected_plain)}, received {sorted(received_plain)}"
        key = next(k for k in expected_plain if not same(expected_plain[k], received_plain[k], tolerance))
        return f"at key {key!r}: " + difference(expected_plain[key], received_plain[key], tolerance)
    if isinstance(expected_plain, np.ndarray) or isinstance(received_plain, np.ndarray):
        try:
            a, b = np.asarray(expected_plain), np.asarray(received_plain)
        except Exception:
            return f"expected {_show(expected)}, received {_show(received)}"
        if a.shape != b.shape:
            return f"expected {_kind(expected)}, received {_kind(received)}: the shapes differ"
        if a.size <= 12:
            return f"expected {_show(expected)}, received {_show(received)}"
        if a.dtype.kind in "biu" and b.dtype.kind in "biu" or a.dtype == bool:
            wrong = a != b
        else:
            wrong = ~np.isclose(b.astype(float), a.astype(float), rtol=tolerance, atol=tolerance, equal_nan=True)
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        largest = float(np.nanmax(np.abs(a.astype(float) - b.astype(float))))
        return (
            f"expected {_kind(expected)}, received {_kind(received)}: {int(wrong.sum())} of {a.size} elements differ; "
            f"the first at index {first}: expected {_show(a[first])}, received {_show(b[first])}; "
            f"the largest difference is {largest:.4g}"
        )
    return f"expected {_show(expected)}, received {_show(received)}"


def student_line(exc: BaseException) -> str:
    """' (in your code, line N: <code>)' of the innermost frame of the traceback that is the student's own
    (not the kit, not an installed package), or '' when there is none."""
    return sandbox.student_line(exc, str(PACKAGE_DIR))


def _not_finite(value) -> bool:
    value = _plain(value)
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return bool(not np.isfinite(array).all())


def _unchanged(before, after) -> bool:
    """Whether an input is exactly as it was (values, shape and dtype)."""
    before, after = _plain(before), _plain(after)
    if isinstance(before, dict):
        return (
            isinstance(after, dict)
            and set(before) == set(after)
            and all(_unchanged(before[k], after[k]) for k in before)
        )
    if isinstance(before, np.ndarray):
        return (
            isinstance(after, np.ndarray)
            and before.shape == after.shape
            and before.dtype == after.dtype
            and bool(np.array_equal(before, after, equal_nan=before.dtype.kind == "f"))
        )
    if isinstance(before, list):
        return (
            isinstance(after, list)
            and len(before) == len(after)
            and all(_unchanged(b, a) for b, a in zip(before, after))
        )
    return True  # numbers, tuples, strings: immutable


@dataclass(frozen=True)
class CheckCase:
    """One input of a check with what the function must give: the value and, for a gradient case, the
    vector-Jacobian product with `upstream` for each input the training differentiates."""

    args: tuple
    wanted: Any
    note: str
    mistake: str = ""
    upstream: torch.Tensor | None = None
    wanted_gradients: tuple | None = None
    by_reference: bool = False  # `wanted` is the reference's output (its dtype is the one the training uses)
    rerun_of: int | None = None  # for a probe's rerun: the index of the random case it simplifies
    says: str = ""  # what differs, for a function right here but wrong on that case


def _reference_gradients(exercise: Exercise, args: tuple, upstream: torch.Tensor) -> tuple:
    answer = sandbox.answer(exercise.reference, args, exercise.gradient_args, upstream)
    if answer.gradients is None:
        raise RuntimeError(f"the reference of exercise {exercise.key} gives no gradient: {answer.gradient_problem}")
    return answer.gradients


def check_cases(exercise: Exercise, random_cases: int, seed: int | None) -> list[CheckCase]:
    """The hand cases, then `random_cases` random inputs drawn from `seed` (None: the exercise's own)
    with the reference's values; random inputs of a torch exercise also carry an upstream gradient."""
    cases = [
        CheckCase(
            c.args,
            exercise.reference(*sandbox.copy_inputs(c.args)) if c.expected is None else c.expected,
            note=c.note or "a hand-made case",
            mistake=c.mistake,
            by_reference=c.expected is None,
        )
        for c in exercise.cases
    ]
    if exercise.random_args is None:
        return cases
    rng = np.random.default_rng(int(exercise.key.replace(".", "")) if seed is None else seed)
    reruns = []
    for number in range(1, random_cases + 1):
        args = exercise.random_args(rng)
        wanted = exercise.reference(*sandbox.copy_inputs(args))
        upstream, gradients = None, None
        if exercise.gradient_args:
            upstream = torch.from_numpy(rng.normal(size=tuple(wanted.shape))).float()
            gradients = _reference_gradients(exercise, args, upstream)
        cases.append(
            CheckCase(
                args,
                wanted,
                note="a random input, against the library's reference",
                upstream=upstream,
                wanted_gradients=gradients,
                by_reference=True,
            )
        )
        for probe in exercise.probes:
            simpler = probe.derive(sandbox.copy_inputs(args))
            if simpler is not None:
                reruns.append(
                    CheckCase(
                        simpler,
                        exercise.reference(*sandbox.copy_inputs(simpler)),
                        note=f"{probe.input} (a rerun of random input {number})",
                        by_reference=True,
                        rerun_of=len(cases) - 1,
                        says=f"Your function is right on {probe.input} (a rerun), so {probe.says}.",
                    )
                )
    return cases + reruns  # the reruns last: each one tells about a random input that failed before it


def _bool_masks_as_numbers(wanted, received) -> str:
    """The dtype of the first array of `received` where `wanted` has a boolean one, if it is not boolean."""
    if isinstance(wanted, dict) and isinstance(received, dict):
        return next(
            (d for k in wanted if k in received for d in [_bool_masks_as_numbers(wanted[k], received[k])] if d), ""
        )
    wanted, received = _plain(wanted), _plain(received)
    if isinstance(wanted, np.ndarray) and wanted.dtype == bool and isinstance(received, np.ndarray):
        return "" if received.dtype == bool else str(received.dtype)
    return ""


def _argument_names(exercise: Exercise) -> list[str]:
    return list(inspect.signature(exercise.reference).parameters)


def _not_finite_advice(exercise: Exercise, args: tuple) -> str:
    """Why a result may not be finite, said only where that cause can apply."""
    large_logits = any(
        isinstance(args[p], torch.Tensor) and args[p].numel() and float(args[p].abs().max()) >= 30
        for p in exercise.logits_at
    )
    if large_logits and exercise.overflow_advice:
        return " " + exercise.overflow_advice
    return " A division by zero (0 / 0) where a sum is empty?"


def _what_differs(exercise: Exercise, cases: list[CheckCase], answers: list[sandbox.Answer], index: int) -> str:
    """' Rerun on <a simpler input>: right there, so <what differs>.' from the first of case `index`'s
    reruns that the function got right, or '' when none did (or the case has none)."""
    for case, answer in zip(cases, answers):
        if (
            case.rerun_of == index
            and not answer.raised
            and not _not_finite(answer.value)
            and same(case.wanted, answer.value, exercise.tolerance)
        ):
            return " " + case.says
    return ""


def judge(exercise: Exercise, cases: list[CheckCase], answers: list[sandbox.Answer]) -> tuple[str, str]:
    """(outcome, message) of a function's answers to `cases`, computed by whoever called it (this process
    for a notebook's check, the sandbox for `ganet grade`); the answers are plain data."""
    label = f"Exercise {exercise.key} ({exercise.name}, {exercise.title})"
    hint = " See the hint below the exercise."
    names = _argument_names(exercise)
    for index, (case, answer) in enumerate(zip(cases, answers)):
        failed = f'{label}: failed on the case "{case.note}": '
        if answer.raised == "NotImplementedError":
            return NOT_ATTEMPTED, f"{label}: not attempted yet. Write the function above, then run this cell again."
        if answer.raised:
            return FAILED, (
                f"{failed}input {_show(case.args)} raised {answer.raised}: «{answer.message}»{answer.line}."
                f"{_what_differs(exercise, cases, answers, index)}{hint}"
            )
        wanted, received = case.wanted, answer.value
        if isinstance(wanted, torch.Tensor) and not isinstance(received, torch.Tensor):
            return FAILED, (
                f"{failed}returned a {type(received).__name__}; the training needs a torch tensor (it carries the "
                f"gradient and stays on the GPU).{hint}"
            )
        if isinstance(wanted, torch.Tensor) and case.by_reference and received.dtype != wanted.dtype:
            return FAILED, (
                f"{failed}returned a {_kind(received)}, expected a {_kind(wanted)}: keep the inputs' dtype (the "
                f"training mixes no float64 in).{hint}"
            )
        if _bool_masks_as_numbers(wanted, received):
            return FAILED, (
                f"{failed}returned masks of dtype {_bool_masks_as_numbers(wanted, received)}; the statement asks for "
                f"boolean ones (NumPy indexes with an integer array by position, not as a mask).{hint}"
            )
        if _not_finite(received) and not _not_finite(wanted):
            return FAILED, (
                f"{failed}input {_show(case.args)} gave {_show(received)}, which is not finite; expected "
                f"{_show(wanted)}.{_not_finite_advice(exercise, case.args)}{hint}"
            )
        if not same(wanted, received, exercise.tolerance):
            because = f" The mistake this case catches: {case.mistake}." if case.mistake else ""
            return FAILED, (
                f"{failed}input {_show(case.args)}, {difference(wanted, received, exercise.tolerance)}.{because}"
                f"{_what_differs(exercise, cases, answers, index)}{hint}"
            )
        if answer.inputs_after is not None:
            for name, before, after in zip(names, case.args, answer.inputs_after):
                if not _unchanged(before, after):
                    return FAILED, (
                        f"{failed}the value is right, but the function changed its input `{name}` in place; the "
                        f"caller still needs it: work on a copy.{hint}"
                    )
        if case.upstream is not None:
            if answer.gradient_problem or answer.gradients is None:
                problem = answer.gradient_problem or "gave no gradient"
                return FAILED, (
                    f"{failed}the values are right, but the function {problem}. In training the U-Net learns "
                    f"through this result, so it must stay a torch computation on its inputs.{hint}"
                )
            for position, want, got in zip(exercise.gradient_args, case.wanted_gradients, answer.gradients):
                want = torch.zeros(()) if want is None else want
                got_array = np.zeros(np.shape(_plain(want)), np.float32) if got is None else _plain(got)
                if same(want, got_array, exercise.tolerance):
                    continue
                name = names[position]
                if got is None or not np.any(got_array):
                    return FAILED, (
                        f"{failed}the values are right, but no gradient reaches `{name}`, where the reference's is "
                        f"not zero (largest {float(np.abs(_plain(want)).max()):.4g}): is `{name}` detached, or cut by "
                        f".item() / float()? In training the U-Net learns through `{name}` too.{hint}"
                    )
                return FAILED, (
                    f"{failed}the values are right, but the gradient with respect to `{name}` differs from the "
                    f"reference's (a vector-Jacobian product with a random upstream gradient): "
                    f"{difference(want, got_array, exercise.tolerance)}.{hint}"
                )
    if len(answers) < len(cases):
        return FAILED, f"{label}: gave {len(answers)} answers to {len(cases)} cases.{hint}"
    hand = len(exercise.cases)
    return (
        PASSED,
        f"{label}: passed ({len(cases)} cases: {hand} worked out by hand, {len(cases) - hand} against the library"
        + (", gradients included" if exercise.gradient_args else "")
        + ").",
    )


def run_check(
    key: str, function: Callable, random_cases: int = 3, seed: int | None = None, library_allowed: bool = False
) -> tuple[str, str]:
    """(outcome, message) of `function` against exercise `key`, run in this process; prints nothing.

    Args:
        random_cases, seed: how many random inputs are compared with the reference, and their seed
            (None: the exercise's own, the same every time).
        library_allowed: accept a function that calls the library's implementation (True only when
            the reference itself is checked).
    """
    exercise = EXERCISES[key]
    label = f"Exercise {key} ({exercise.name}, {exercise.title})"
    library = exercise.implemented_by + (exercise.reference,)
    try:
        with time_limit(exercise.time_limit_s):
            cases, answers = check_cases(exercise, random_cases, seed), []
            for case in cases:
                with calls_to(library) as called:
                    positions = exercise.gradient_args if case.upstream is not None else ()
                    answers.append(
                        sandbox.answer(
                            function,
                            case.args,
                            gradient_positions=positions,
                            upstream=case.upstream,
                            kit_dir=str(PACKAGE_DIR),
                        )
                    )
                if called and not library_allowed:
                    return FAILED, (
                        f"{label}: calls the kit's own {', '.join(sorted(called))}, which is the answer: write its "
                        "lines yourself. See the hint below the exercise."
                    )
                if answers[-1].raised == "NotImplementedError":
                    break
            return judge(exercise, cases, answers)
    except CheckTimeout:
        return TIMED_OUT, (
            f"{label}: took longer than {exercise.time_limit_s:g} s; a loop that never ends? The check stopped it. "
            "See the hint below the exercise."
        )


_checked: dict[str, tuple[str, Callable]] = {}  # exercise key -> (outcome, the function checked), for `use`


def check(key: str, function: Callable) -> str:
    """Check a student's `function` for exercise `key` and print the outcome; returns it (never raises)."""
    outcome, message = run_check(key, function)
    _checked[key] = (outcome, function)
    print(("PASSED  " if outcome == PASSED else "TODO    " if outcome == NOT_ATTEMPTED else "FAILED  ") + message)
    return outcome


def require(key: str, function: Callable, seed: int | None = None) -> None:
    """The grading check (nbgrader's hidden test under each check cell): the hand cases and
    `HIDDEN_CASES` random inputs drawn from `seed` (default: $GANET_GRADING_SEED, else 0).

    Raises:
        AssertionError: with the check's message, unless the function passes.
    """
    seed = int(os.environ.get(GRADING_SEED, "0")) if seed is None else seed
    outcome, message = run_check(key, function, random_cases=HIDDEN_CASES, seed=seed)
    if outcome != PASSED:
        raise AssertionError(message)


def use(key: str, function: Callable, my_code: bool = True) -> Callable:
    """The function the cells after exercise `key` run, and one sentence saying which: the student's
    `function` once its check passed (with `my_code` on), else the kit's own in the same signature."""
    exercise = EXERCISES[key]
    outcome, checked = _checked.get(key, ("", None))
    if my_code and outcome == PASSED and checked is function:
        print(f"using your {exercise.name} (exercise {key} passed)")
        return function
    if not my_code:
        why = "my_code is off in the parameters cell"
    elif outcome == PASSED:
        why = f"your {exercise.name} changed since its check passed; run the check cell again"
    else:
        why = f"exercise {key} " + {
            FAILED: "failed its check",
            TIMED_OUT: "ran out of time in its check",
            NOT_ATTEMPTED: "is not attempted yet",
        }.get(outcome, "has not been checked yet")
    print(f"using the kit's {exercise.name}: {why}")
    return exercise.reference
