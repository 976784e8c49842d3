"""HD95 of the `brats` protocol against hand-computed values and against the official package.

The official BraTS 2023 code scores HD95 with DeepMind's `surface-distance`
(`compute_surface_distances` then `compute_robust_hausdorff(..., 95)`, an infinite result -> 374,
two empty masks -> 0 without calling it). The kit computes the same numbers its own, faster way
(evaluation/surface.py); the oracle test below compares them on mask pairs it draws itself.
"""

import warnings

import numpy as np
import pytest
import surface_distance
from scipy import ndimage

from ganet_lib.evaluation.surface import EMPTY_HD95, hd95, surface_distances, surfel_areas

SPACINGS = [(1.0, 1.0, 1.0), (1.0, 1.0, 3.0), (0.9, 1.2, 2.5)]
PAIRS = 300  # random mask pairs compared with the package, bit for bit or within TOLERANCE_MM
TOLERANCE_MM = 1e-9


def cube(shape, *ranges):
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in ranges)] = True
    return mask


# --- hand-computable cases -----------------------------------------------------------------------


def test_surfel_areas_of_flat_edge_and_corner_patches():
    areas = surfel_areas((1.0, 1.0, 1.0))
    assert areas[0] == 0 and areas[255] == 0
    assert areas[0b00000001] == pytest.approx(np.sqrt(3) / 8)  # one corner inside: a triangle
    assert areas[0b00000011] == pytest.approx(np.sqrt(2) / 2)  # two neighbouring corners: a tilted rectangle
    assert areas[0b00001111] == pytest.approx(1.0)  # a face: the unit square
    assert areas[0b11111110] == pytest.approx(areas[0b00000001])  # complement: the same surface
    # Bits 0-3 are the corners with first offset 1: their patch is a plane normal to axis 0, whose
    # area scales with the spacing of the other two axes.
    assert surfel_areas((1.0, 1.0, 2.5))[0b00001111] == pytest.approx(2.5)
    assert surfel_areas((3.0, 1.0, 1.0))[0b00001111] == pytest.approx(1.0)


def test_surfel_areas_are_the_official_table():
    # Three corners of one face inside (codes 7, 14 and 21 among others: rotations of one shape).
    # The official table lists three triangles for each, of areas 1/2, sqrt(3)/4 and sqrt(3)/8;
    # the kit's former marching-cubes patches gave 1.1217 to some rotations and 1.1291 to others.
    for code in (0b00000111, 0b00001110, 0b00010101):
        assert surfel_areas((1.0, 1.0, 1.0))[code] == pytest.approx(0.5 + 3 * np.sqrt(3) / 8, abs=1e-12)
    for spacing in SPACINGS:
        official = surface_distance.lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
        assert np.array_equal(surfel_areas(spacing), official)


@pytest.mark.parametrize(
    "spacing, offset, expected",
    [
        ((1.0, 1.0, 1.0), (0, 0, 4), 4.0),  # single voxels 4 apart: corner distances 3 and 4 (equal areas): 95 % -> 4
        ((1.0, 1.0, 2.5), (0, 0, 4), 10.0),  # the same along an axis of 2.5 mm
        ((1.0, 1.0, 2.5), (3, 0, 0), 3.0),  # along a 1 mm axis the 2.5 mm spacing does not matter
    ],
)
def test_hd95_of_two_voxels_honours_anisotropic_spacing(spacing, offset, expected):
    truth = cube((20, 20, 20), (5, 6), (5, 6), (5, 6))
    prediction = np.roll(truth, offset, axis=(0, 1, 2))
    assert hd95(prediction, truth, spacing) == pytest.approx(expected)


def test_hd95_empty_rules():
    empty = np.zeros((8, 8, 8), bool)
    full = cube((8, 8, 8), (2, 4), (2, 4), (2, 4))
    assert hd95(empty, empty) == 0.0
    assert hd95(full, empty) == EMPTY_HD95 and hd95(empty, full) == EMPTY_HD95
    assert hd95(full, full) == 0.0


# --- the official package as the oracle, on random pairs -------------------------------------------


def _ball(shape, centre, radius):
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((axis - c) ** 2 for axis, c in zip(grid, centre)) <= radius**2


def random_mask(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """One mask of a randomly chosen kind: balls, dilated speckle, a thin line or sheet, a single
    voxel, or nothing; about a third of them pushed against the volume's border."""
    kind = rng.choice(["balls", "speckle", "line", "sheet", "voxel", "empty"], p=[0.3, 0.25, 0.15, 0.1, 0.15, 0.05])
    mask = np.zeros(shape, bool)
    if kind == "balls":
        for _ in range(rng.integers(1, 4)):
            mask |= _ball(shape, rng.integers(0, shape), radius=rng.uniform(1, 6))
    elif kind == "speckle":
        mask = rng.random(shape) < rng.uniform(0.01, 0.2)
        mask = ndimage.binary_dilation(mask, iterations=int(rng.integers(0, 3))) if rng.random() < 0.6 else mask
    elif kind == "line":  # one voxel thick, along an axis or a diagonal
        start, step = rng.integers(0, shape), rng.integers(-1, 2, 3)
        step[rng.integers(3)] = 1 if not step.any() else step[rng.integers(3)]
        for k in range(int(rng.integers(2, max(shape)))):
            point = start + k * step
            if np.all((point >= 0) & (point < shape)):
                mask[tuple(point)] = True
    elif kind == "sheet":  # a plane one voxel thick, partly filled
        axis, position = rng.integers(3), rng.integers(shape)
        index = [slice(None)] * 3
        index[axis] = position[axis]
        mask[tuple(index)] = rng.random(mask[tuple(index)].shape) < rng.uniform(0.3, 1.0)
    elif kind == "voxel":
        mask[tuple(rng.integers(0, shape))] = True
    if kind != "empty" and rng.random() < 0.35:  # push it against a face of the volume
        axis = int(rng.integers(3))
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        shift = -hits[0] if rng.random() < 0.5 else shape[axis] - 1 - hits[-1]
        mask = np.roll(mask, shift, axis=axis)
    return mask


def random_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """(truth, prediction, spacing): a prediction of its own kind, or the truth moved, grown or shrunk."""
    shape = tuple(int(n) for n in rng.integers(4, 28, 3))
    spacing = SPACINGS[rng.integers(len(SPACINGS))]
    truth = random_mask(rng, shape)
    change = rng.choice(["other", "shift", "dilate", "erode"])
    if change == "other":
        prediction = random_mask(rng, shape)
    elif change == "shift":
        prediction = np.roll(truth, tuple(rng.integers(-2, 3, 3)), axis=(0, 1, 2))
    elif change == "dilate":
        prediction = ndimage.binary_dilation(truth, iterations=int(rng.integers(1, 3)))
    else:
        prediction = ndimage.binary_erosion(truth) | (rng.random(shape) < 0.01)
    return truth, prediction, spacing


def official_hd95(truth: np.ndarray, prediction: np.ndarray, spacing) -> float:
    """HD95 as the official BraTS 2023 code computes it with the package."""
    if not truth.any() and not prediction.any():
        return 0.0  # the official code's rule; the package is not called
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its scipy.ndimage.filters / .morphology names
        distances = surface_distance.compute_surface_distances(truth, prediction, spacing)
    result = surface_distance.compute_robust_hausdorff(distances, 95)
    return EMPTY_HD95 if np.isinf(result) else float(result)  # the official code replaces inf by 374


def assert_same_pairs(mine: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray], what: str) -> None:
    """The same (distance, area) pairs, distances within TOLERANCE_MM, areas within 1e-12 mm^2."""
    assert len(mine[0]) == len(theirs[0]), what
    ordered = [np.lexsort((areas, np.round(distances / TOLERANCE_MM))) for distances, areas in (mine, theirs)]
    (my_distances, my_areas), (their_distances, their_areas) = (
        (distances[order], areas[order]) for (distances, areas), order in zip((mine, theirs), ordered)
    )
    np.testing.assert_allclose(my_distances, their_distances, rtol=0, atol=TOLERANCE_MM, err_msg=f"{what} distances")
    np.testing.assert_allclose(my_areas, their_areas, rtol=0, atol=1e-12, err_msg=f"{what} areas")


def test_hd95_equals_the_official_package_on_random_pairs(monkeypatch):
    # The package spells infinity `np.Inf`, which numpy 2 removed; it reaches it only when one mask
    # is empty. Giving it back the old name lets the official code run those cases as it did.
    monkeypatch.setattr(np, "Inf", np.inf, raising=False)
    rng = np.random.default_rng(34)
    kinds = {"one empty": 0, "both empty": 0, "same surface": 0}
    for _ in range(PAIRS):
        truth, prediction, spacing = random_pair(rng)
        expected, got = official_hd95(truth, prediction, spacing), hd95(prediction, truth, spacing)
        assert abs(got - expected) <= TOLERANCE_MM, (truth.shape, spacing, got, expected)
        if truth.any() and prediction.any():
            # Every step, not only the number: the (distance, area) pairs of both directions. A
            # distance reached by two offsets (4 x 0.9 mm and 3 x 1.2 mm) may differ in its last
            # bit between the package's distance transform and the kit's k-d tree, which reorders
            # such near-ties: the pairs are compared sorted by distance rounded to the tolerance.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                official = surface_distance.compute_surface_distances(truth, prediction, spacing)
            mine = surface_distances(truth, prediction, spacing)
            for direction, (distances, areas) in {"gt_to_pred": mine[:2], "pred_to_gt": mine[2:]}.items():
                theirs = official[f"distances_{direction}"], official[f"surfel_areas_{direction.split('_')[0]}"]
                assert_same_pairs((distances, areas), theirs, what=direction)
            kinds["same surface"] += bool(expected == 0.0)
        else:
            kinds["both empty" if not truth.any() and not prediction.any() else "one empty"] += 1
    # The draw reaches the edge cases it claims to (seeded: 8 one empty, 8 both empty, 11 at HD95 0).
    assert kinds["one empty"] > 0 and kinds["both empty"] > 0 and kinds["same surface"] > 0, kinds
