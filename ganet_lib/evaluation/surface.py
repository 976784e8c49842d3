"""Surface distances between 3D masks, weighted by surface area: the HD95 of the BraTS evaluation.

The official BraTS 2023 evaluation computes HD95 with DeepMind's `surface-distance` package
(Nikolov et al., 2018, https://github.com/deepmind/surface-distance; a copy lives in the official
repository, github.com/rachitsaluja/BraTS-2023-Metrics, with the same table of surface patches).
The kit depends on that package for the one thing that is a convention rather than a method, the
area of each neighbour code's surface patch, and computes the rest itself, faster (SPEC section 5,
step 7):

1. The surface of a mask lives on the grid of voxel *corners*: each corner looks at the 2x2x2
   voxels around it, and the eight in/out bits form a "neighbour code" 0..255 (the package's bit
   order: the voxel at offset (a, b, c) from the corner's lower neighbour is bit 7 - (4a + 2b + c)).
   Corners whose code is neither 0 (all outside) nor 255 (all inside) are border corners.
2. Each border corner carries the area (mm^2) of its code's surface patch, taken from the package's
   table (`surface_distance.lookup_tables`): one marching-cubes triangulation listed per code.
3. Distances (mm, anisotropic spacing honoured) from every border corner of one mask to the
   nearest border corner of the other: exact Euclidean nearest neighbours, with the arithmetic of
   the package's distance transform (the same bits, except where two offsets give one distance,
   4 x 0.9 mm and 3 x 1.2 mm, and the two codes may pick different ones: the last bit can differ).
4. The robust Hausdorff distance at 95 %: sort one direction's (distance, area) pairs, and take
   the first distance at which the cumulative surface area reaches 95 % of the total; the same the
   other way; the larger of the two.

Only the bounding box of the two masks (plus one voxel) is processed, and a k-d tree over the
border corners replaces the distance transform of the box, so the cost follows the size of the
structures, not of the volume (tests/evaluation/test_surface.py compares every step's result with
the package on a few hundred random mask pairs; benchmarks/bench_evaluate.py times both).
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product

import numpy as np
from scipy.spatial import cKDTree
from surface_distance.lookup_tables import create_table_neighbour_code_to_surface_area

EMPTY_HD95 = 374.0  # the BraTS evaluation's score when one mask is empty (the diagonal of 240x240x155, rounded)

# Corner k of a 2x2x2 cell has the offset _CORNERS[k] and bit 1 << (7 - k) in the neighbour code,
# the order of the package's encoding kernel, so that a code indexes its table directly.
_CORNERS = np.array(list(product((0, 1), repeat=3)))  # (8, 3): k = 4 a + 2 b + c


@lru_cache(maxsize=None)
def surfel_areas(spacing: tuple[float, float, float]) -> np.ndarray:
    """Area (mm^2) of the surface patch of each of the 256 neighbour codes at a voxel spacing.

    The official table (`surface-distance`'s per-code triangles, scaled by the spacing as the
    package scales them), read-only because it is cached per spacing.
    """
    areas = create_table_neighbour_code_to_surface_area(tuple(float(s) for s in spacing))  # (256,)
    areas.flags.writeable = False
    return areas


def _neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """Neighbour code of every corner of a mask's voxels: (X+1, Y+1, Z+1) uint8."""
    padded = np.pad(mask.astype(np.uint8), 1)
    codes = np.zeros(tuple(n - 1 for n in padded.shape), np.uint8)
    for k, (a, b, c) in enumerate(_CORNERS):
        codes |= padded[a : a + codes.shape[0], b : b + codes.shape[1], c : c + codes.shape[2]] << (7 - k)
    return codes


def bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """Slices of the smallest box holding every True voxel of a non-empty mask."""
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _grid_distances(points: np.ndarray, targets: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """|points - targets| in mm, row by row ((N, 3) grid indices each), with the arithmetic of scipy's
    distance transform (offset x spacing, squared, summed over the axes in order, square root), so
    that the numbers are the package's bit for bit."""
    offset = (targets - points).astype(np.float64) * spacing  # (N, 3)
    offset *= offset
    return np.sqrt(offset[:, 0] + offset[:, 1] + offset[:, 2])


def surface_distances(
    mask_a: np.ndarray, mask_b: np.ndarray, spacing: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distances between the surfaces of two 3D masks, with the area of each surface element.

    The package's `compute_surface_distances(mask_a, mask_b, spacing)`, computed differently.

    Returns:
        distances_a (mm) from each border corner of `mask_a` to the surface of `mask_b`, and their
        areas (mm^2), sorted by (distance, area) as the package sorts them; then the same from
        `mask_b` to `mask_a`. A mask without surface gives empty arrays, and the other direction's
        distances are then inf.
    """
    mask_a, mask_b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    if mask_a.shape != mask_b.shape:
        raise ValueError(f"masks of different shapes: {mask_a.shape} and {mask_b.shape}")
    union = mask_a | mask_b
    if not union.any():
        empty = np.zeros(0)
        return empty, empty, empty, empty
    box = bounding_box(union)
    areas = surfel_areas(tuple(float(s) for s in spacing))
    spacing_mm = np.asarray(spacing, np.float64)
    codes_a, codes_b = _neighbour_codes(mask_a[box]), _neighbour_codes(mask_b[box])
    border_a = (codes_a != 0) & (codes_a != 255)
    border_b = (codes_b != 0) & (codes_b != 255)
    corners_a, corners_b = np.argwhere(border_a), np.argwhere(border_b)  # (n, 3) grid indices

    def directed(corners_from, codes_from, border_from, corners_to, border_to):
        if len(corners_from) == 0:
            return np.zeros(0), np.zeros(0)
        if len(corners_to):
            # Exact nearest corners; a k-d tree over the border corners does what a distance
            # transform of the box would, at a cost that follows the surface, not the box. Corners
            # on both surfaces are at distance 0 and need no query (a third of them for a typical
            # prediction); the tree's build options change its speed, not its answers.
            distances = np.zeros(len(corners_from))
            elsewhere = ~border_to[border_from]  # (n_from,), in the order of corners_from
            if elsewhere.any():
                tree = cKDTree(corners_to * spacing_mm, balanced_tree=False, compact_nodes=False)
                nearest = tree.query(corners_from[elsewhere] * spacing_mm)[1]
                distances[elsewhere] = _grid_distances(corners_from[elsewhere], corners_to[nearest], spacing_mm)
        else:
            distances = np.full(len(corners_from), np.inf)
        surfel = areas[codes_from[border_from]]
        order = np.lexsort((surfel, distances))  # by distance, then area: the package's sort of (d, a) pairs
        return distances[order], surfel[order]

    distances_a, areas_a = directed(corners_a, codes_a, border_from=border_a, corners_to=corners_b, border_to=border_b)
    distances_b, areas_b = directed(corners_b, codes_b, border_from=border_b, corners_to=corners_a, border_to=border_a)
    return distances_a, areas_a, distances_b, areas_b


def _robust_distance(distances: np.ndarray, areas: np.ndarray, percent: float) -> float:
    """The first sorted distance at which the cumulative area fraction reaches `percent` %."""
    if len(distances) == 0:
        return np.inf
    cumulative = np.cumsum(areas) / areas.sum()
    index = int(np.searchsorted(cumulative, percent / 100.0))
    return float(distances[min(index, len(distances) - 1)])


def hd95(
    prediction: np.ndarray,
    truth: np.ndarray,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    percent: float = 95.0,
) -> float:
    """Robust Hausdorff distance (mm) between two 3D masks, as the BraTS evaluation computes it.

    Empty-mask rules (as the official code): both empty -> 0.0; exactly one empty -> 374.0.
    """
    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    has_prediction, has_truth = prediction.any(), truth.any()
    if not has_prediction and not has_truth:
        return 0.0
    if not has_prediction or not has_truth:
        return EMPTY_HD95
    d_truth, a_truth, d_prediction, a_prediction = surface_distances(truth, prediction, spacing)
    distance = max(_robust_distance(d_truth, a_truth, percent), _robust_distance(d_prediction, a_prediction, percent))
    return EMPTY_HD95 if np.isinf(distance) else distance
