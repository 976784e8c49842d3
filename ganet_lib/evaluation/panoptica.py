"""The BraTS 2025+ evaluation (`brats-evaluation` 0.0.10 on panoptica 2.1.7, config `gli`), reimplemented fast.

The official evaluation (SPEC section 8) is `brats-evaluate --config gli` followed by
`brats-parse-metrics seg`. This module gives the same CSV, column for column, from numpy arrays,
about 20-40x faster. No code is taken from the packages; the rules below were read from their
sources (panoptica 2.1.7, brats_evaluation 0.0.10) and checked against them by
tests/evaluation/test_panoptica.py, which runs the official commands as the oracle.

Per subject and per group G (config_gli.yaml, in its order: snfh [2], et [3], netc [1], rc [4],
tc [1, 3], wt [1, 2, 3]; labels as BraTS 2023+: 1 NETC, 2 SNFH, 3 ET, 4 RC):

1. Instances are the 26-connected components of G's mask in each volume (panoptica's
   `ConnectedComponentsInstanceApproximator`, cc3d backend for 3D).
2. Matching is one-to-one, `MaxBipartiteMatching` on DSC with threshold 1e-6: a cost matrix
   (reference components x predicted components, both in cc3d's label order) holds 1 - DSC for
   every overlapping pair with DSC >= 1e-6 and 1 + 1e-6 elsewhere; scipy's
   `linear_sum_assignment` solves it and an assigned pair whose cost is < 1 is a match.
   tp = matches, fp = predicted components - tp, fn = reference components - tp;
   prec = tp / (tp + fp), rec = tp / (tp + fn) (NaN on 0 / 0), f1 = panoptica's "rq":
   tp / (tp + fp / 2 + fn / 2), 0 when tp = 0 and anything exists, NaN when nothing does.
3. Each match is scored by DSC, NSD and HD95 (`instance_evaluator.evaluate_matched_instance`);
   lesionwise_*_mean / _std are the mean and the population std (ddof 0) over the matches.
   With no match: DSC and NSD 0, HD95 infinite (the config's EdgeCaseHandler), std NaN; NaN
   for all three when neither side has a component.
4. Global metrics compare G's two whole binary masks. With no overlapping voxel at all, the
   same edge rule applies (so two non-empty masks that do not touch get HD95 = inf, then 373).
5. Surfaces (`metrics/assd.py`, `__surface_distances`): a mask's border is the mask minus its
   erosion by the 6-neighbour cross (voxels at the volume's edge count as border); distances go
   from each border voxel to the nearest border voxel of the other mask (Euclidean, in mm).
   HD95 = 95th percentile (numpy's linear interpolation) of both directions pooled; NSD =
   (a + b) / (a + b + a' + b') with a, b the fractions of each direction within the tolerance
   and a', b' the fractions beyond it.

The parser then writes one row per subject (global HD95 inf -> 373, the diameter of the SRI-24
cube; the lesionwise HD95 keeps inf), rows of 0 (373 for the HD95 columns that are not stds)
for a reference without prediction, and mean, std (ddof 1) and median rows over all of them,
NaN skipped (pandas).

Odd rules of the official code reproduced here on purpose (each marked `# Official quirk:`):
- the spacing: SimpleITK reads the files, so its arrays are (z, y, x) while the spacing it
  passes on, `GetSpacing()`, is (x, y, z): the header's spacing pairs with the reversed axes;
- global NSD and HD95 are computed without any spacing: unit voxels and an NSD tolerance of
  0.5 (only coinciding border voxels count), while lesionwise NSD and HD95 use the spacing and
  a tolerance of the smallest spacing (1 mm for BraTS).

Speed: everything is computed on the bounding box of the group's two masks; the overlap of every
component pair comes from one histogram of (reference label, predicted label) pairs; surface
distances come from a k-d tree over border voxels (the distance then recomputed exactly as
scipy's distance transform computes it), and a match that is the whole of both masks reuses the
global surfaces.
"""

from __future__ import annotations

import multiprocessing
import re
import sys
import warnings
from pathlib import Path

import cc3d
import nibabel as nib
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

# The `gli` config's groups in its (and so the CSV's) order: name -> labels.
GROUPS: dict[str, tuple[int, ...]] = {
    "snfh": (2,),
    "et": (3,),
    "netc": (1,),
    "rc": (4,),
    "tc": (1, 3),
    "wt": (1, 2, 3),
}
MAX_LABEL = 4  # panoptica refuses labels outside the config's groups (the subject then drops out)
HD95_PENALTY = 373.0  # brats-parse-metrics: the diameter of the SRI-24 cube, for inf and missing cases
MATCHING_THRESHOLD = 1e-6  # MaxBipartiteMatching's DSC threshold in config_gli.yaml
_UNMATCHED_COST = 1.0 + 1e-6  # panoptica's default cost for pairs below the threshold
_GLOBAL_NSD_TOLERANCE = 0.5  # panoptica's NSD tolerance when no spacing is given (the global metrics)


def columns(group: str) -> list[str]:
    """The CSV columns of one group, in brats-parse-metrics' order."""
    return [
        *(f"all_instance_{name}_{group}" for name in ("tp", "fp", "fn", "prec", "rec", "f1")),
        *(f"global_{name}_{group}" for name in ("dsc", "nsd", "hd95")),
        *(f"lesionwise_{name}_{stat}_{group}" for name in ("dsc", "nsd", "hd95") for stat in ("mean", "std")),
    ]


COLUMNS: list[str] = [column for group in GROUPS for column in columns(group)]


# --- surfaces ------------------------------------------------------------------------------------


def _border(mask: np.ndarray) -> np.ndarray:
    """Voxels of `mask` with a 6-neighbour outside it; `mask` must have a zero layer all round.

    Same as mask ^ binary_erosion(mask, 6-neighbour cross, border_value=0) (panoptica's border).
    """
    inner = mask[1:-1, 1:-1, 1:-1]
    interior = (
        inner
        & mask[:-2, 1:-1, 1:-1]
        & mask[2:, 1:-1, 1:-1]
        & mask[1:-1, :-2, 1:-1]
        & mask[1:-1, 2:, 1:-1]
        & mask[1:-1, 1:-1, :-2]
        & mask[1:-1, 1:-1, 2:]
    )
    border = np.zeros_like(mask)
    border[1:-1, 1:-1, 1:-1] = inner & ~interior
    return border


def _voxels(mask: np.ndarray) -> np.ndarray:
    """(N, 3) indices of `mask`'s voxels in C order (np.argwhere, faster through the flat index)."""
    return np.stack(np.unravel_index(np.flatnonzero(mask), mask.shape), axis=1)


def _distances(points: np.ndarray, targets: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """|points - targets| in mm, row by row ((N, 3) voxel indices each), as scipy's distance transform
    computes it: (offset * spacing)^2 summed over the axes in order, then the square root."""
    offset = (targets - points).astype(np.float64) * spacing  # (N, 3)
    offset *= offset
    return np.sqrt(offset[:, 0] + offset[:, 1] + offset[:, 2])


def _nearest(points: np.ndarray, targets: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance in mm, index into `targets`) from each of `points` to its nearest target.

    A k-d tree finds the nearest target; the distance is then recomputed from the integer offset, so
    the numbers are the distance transform's (panoptica's EDT of the border's complement), bit for
    bit but for exact ties.
    """
    _, nearest = cKDTree(targets * spacing).query(points * spacing)
    return _distances(points, targets[nearest], spacing), nearest


def _directed(
    points: np.ndarray, targets: np.ndarray, spacing: np.ndarray, known: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Distances from `points` to the nearest of `targets`, `known` where `valid`, else searched."""
    if valid.all():
        return known
    distances = known.copy()
    distances[~valid] = _nearest(points[~valid], targets, spacing)[0]
    return distances


def _nsd_and_hd95(distances: list[np.ndarray], tolerance: float) -> tuple[float, float]:
    """(NSD, HD95) from both directions' distances (panoptica's `_nsd_from_pair`, `_hd95_from_pair`)."""
    from_reference, from_prediction = distances
    within = np.sum(from_reference <= tolerance) / len(from_reference) + np.sum(from_prediction <= tolerance) / len(
        from_prediction
    )
    beyond = np.sum(from_reference > tolerance) / len(from_reference) + np.sum(from_prediction > tolerance) / len(
        from_prediction
    )
    # sys.float_info.min: the official formula's guard against 0 / 0, kept for identical numbers
    nsd = within / (within + beyond + sys.float_info.min)
    return float(nsd), float(np.percentile(np.concatenate(distances), 95))


# --- one group ---------------------------------------------------------------------------------


def _padded_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The bounding box of `mask`'s voxels, grown by one voxel where the array allows."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(hits[0] - 1, 0), min(hits[-1] + 2, mask.shape[axis])))
    return tuple(box)


def _zero_tp(n_prediction: int, n_reference: int) -> tuple[float, float, float]:
    """(DSC, NSD, HD95) without any match: the config's EdgeCaseHandler."""
    if n_prediction + n_reference == 0:
        return np.nan, np.nan, np.nan
    return 0.0, 0.0, np.inf


def _match(
    reference: np.ndarray,
    prediction: np.ndarray,
    reference_labels: np.ndarray,
    prediction_labels: np.ndarray,
    n_reference: int,
    n_prediction: int,
):
    """Matched reference and predicted labels (two arrays, 1-based) and every pair's DSC.

    The overlap of every pair comes from one histogram of the label pairs of the overlapping
    voxels, the sizes from one histogram per side; DSC = 2 |A & B| / (|A| + |B|), as panoptica
    computes it. Rows and columns in label order, as panoptica builds its cost matrix.
    """
    both = reference & prediction
    pairs = (reference_labels[both].astype(np.int64) - 1) * n_prediction + prediction_labels[both] - 1
    overlap = np.bincount(pairs, minlength=n_reference * n_prediction).reshape(n_reference, n_prediction)
    reference_sizes = np.bincount(reference_labels[reference], minlength=n_reference + 1)[1:]
    prediction_sizes = np.bincount(prediction_labels[prediction], minlength=n_prediction + 1)[1:]
    dsc = 2.0 * overlap / (reference_sizes[:, None] + prediction_sizes[None, :]).astype(np.float64)
    cost = np.full(overlap.shape, _UNMATCHED_COST)
    eligible = (overlap > 0) & (dsc >= MATCHING_THRESHOLD)
    cost[eligible] = 1.0 - dsc[eligible]
    rows, cols = linear_sum_assignment(cost)
    kept = cost[rows, cols] < 1.0
    return rows[kept] + 1, cols[kept] + 1, dsc


def _indices_by_label(labels: np.ndarray, count: int) -> list[np.ndarray]:
    """Indices into `labels` grouped by label: entry k lists where label k is (entry 0: label 0)."""
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.searchsorted(labels[order], np.arange(1, count + 1)))


def _group_scores(reference: np.ndarray, prediction: np.ndarray, spacing: np.ndarray, group: str) -> dict[str, float]:
    """One group's columns from its two boolean masks (panoptica's (z, y, x) axis order)."""
    union = reference | prediction
    if not union.any():  # nothing on either side: no instances, no global overlap
        values = [0, 0, 0, np.nan, np.nan, np.nan, *_zero_tp(0, 0), *[np.nan] * 6]
        return dict(zip(columns(group), map(float, values)))

    # 1. Crop to the two masks' box, with a zero layer all round (the border and the volume edge).
    box = _padded_box(union)
    reference = np.pad(reference[box], 1)
    prediction = np.pad(prediction[box], 1)

    # 2. Instances: 26-connected components, labelled on C-ordered arrays as panoptica's cc3d call
    # sees them (cc3d numbers components in memory order, and the numbering breaks matching ties).
    reference_labels, n_reference = cc3d.connected_components(reference, connectivity=26, return_N=True)
    prediction_labels, n_prediction = cc3d.connected_components(prediction, connectivity=26, return_N=True)

    # 3. Matching and counts.
    matched_reference = matched_prediction = np.zeros(0, dtype=np.int64)
    if n_reference and n_prediction:
        matched_reference, matched_prediction, pair_dsc = _match(
            reference,
            prediction,
            reference_labels=reference_labels,
            prediction_labels=prediction_labels,
            n_reference=n_reference,
            n_prediction=n_prediction,
        )
    tp = len(matched_reference)
    fp, fn = n_prediction - tp, n_reference - tp
    precision = tp / (tp + fp) if tp + fp else np.nan
    recall = tp / (tp + fn) if tp + fn else np.nan
    if tp == 0:
        f1 = 0.0 if n_prediction + n_reference else np.nan
    else:
        f1 = tp / (tp + 0.5 * fp + 0.5 * fn)

    # 4. Global binary metrics. Official quirk: no spacing reaches them (unit voxels, NSD tolerance 0.5).
    overlap = np.count_nonzero(reference & prediction)
    if overlap == 0:  # then no match either
        global_dsc, global_nsd, global_hd95 = _zero_tp(n_prediction, n_reference)
    else:
        global_dsc = 2 * overlap / (np.count_nonzero(reference) + np.count_nonzero(prediction))
        reference_border = _voxels(_border(reference))  # (N, 3) voxel indices
        prediction_border = _voxels(_border(prediction))
        from_reference, nearest_prediction = _nearest(reference_border, prediction_border, np.ones(3))
        from_prediction, nearest_reference = _nearest(prediction_border, reference_border, np.ones(3))
        global_nsd, global_hd95 = _nsd_and_hd95([from_reference, from_prediction], _GLOBAL_NSD_TOLERANCE)

    # 5. Lesionwise metrics of each match, with the spacing and a tolerance of its smallest step.
    # A component's border is the group's border on its voxels (a 6-neighbour of a voxel is in the
    # voxel's 26-connected component or outside the mask), so the group's border points are split by
    # label. At unit spacing a border point whose nearest point on the whole other border lies in
    # the matched component keeps that distance; only the others are searched again.
    dscs, nsds, hd95s = [], [], []
    tolerance = float(min(spacing))
    unit = bool(np.all(spacing == 1.0))
    if tp:
        reference_point_labels = reference_labels[tuple(reference_border.T)]
        prediction_point_labels = prediction_labels[tuple(prediction_border.T)]
        reference_parts = _indices_by_label(reference_point_labels, n_reference)
        prediction_parts = _indices_by_label(prediction_point_labels, n_prediction)
    for ref_label, pred_label in sorted(zip(matched_reference.tolist(), matched_prediction.tolist())):
        dscs.append(float(pair_dsc[ref_label - 1, pred_label - 1]))
        ref_part, pred_part = reference_parts[ref_label], prediction_parts[pred_label]
        ref_points, pred_points = reference_border[ref_part], prediction_border[pred_part]
        if unit:
            distances = [
                _directed(
                    ref_points,
                    pred_points,
                    spacing=spacing,
                    known=from_reference[ref_part],
                    valid=prediction_point_labels[nearest_prediction[ref_part]] == pred_label,
                ),
                _directed(
                    pred_points,
                    ref_points,
                    spacing=spacing,
                    known=from_prediction[pred_part],
                    valid=reference_point_labels[nearest_reference[pred_part]] == ref_label,
                ),
            ]
        else:
            distances = [_nearest(ref_points, pred_points, spacing)[0], _nearest(pred_points, ref_points, spacing)[0]]
        nsd, hd95 = _nsd_and_hd95(distances, tolerance)
        nsds.append(nsd)
        hd95s.append(hd95)
    if tp:
        lesionwise = []
        for scores in (dscs, nsds, hd95s):
            lesionwise += [float(np.average(scores)), float(np.std(scores))]
    else:
        dsc, nsd, hd95 = _zero_tp(n_prediction, n_reference)
        lesionwise = [dsc, np.nan, nsd, np.nan, hd95, np.nan]

    # Official quirk: only the global HD95 turns inf into 373; the lesionwise mean keeps inf.
    global_hd95 = HD95_PENALTY if np.isinf(global_hd95) else global_hd95
    values = [tp, fp, fn, precision, recall, f1, global_dsc, global_nsd, global_hd95, *lesionwise]
    return dict(zip(columns(group), map(float, values)))


# --- subjects and the table --------------------------------------------------------------------


def brats_panoptica_scores(
    prediction: np.ndarray, truth: np.ndarray, spacing: tuple[float, float, float]
) -> dict[str, float]:
    """One subject's row of `brats-parse-metrics seg` (without `subject_id`), in its column order.

    Args:
        prediction: (X, Y, Z) label map as nibabel reads it (0 background, 1 NETC, 2 SNFH, 3 ET,
            4 RC), integer typed.
        truth: the reference label map, same shape and labels.
        spacing: the header's voxel size in mm along X, Y, Z (nibabel's `get_zooms()`).

    Returns:
        {column: value} for the 90 columns of COLUMNS: per group, all_instance_{tp,fp,fn,prec,rec,f1},
        global_{dsc,nsd,hd95} (inf -> 373) and lesionwise_{dsc,nsd,hd95}_{mean,std}; NaN where the
        official CSV has an empty cell, inf where it has inf.

    Raises:
        ValueError: on different shapes, a non-3D volume, or a label outside 0..4 (the official
            evaluation fails on those and drops the subject from its table).
    """
    if prediction.shape != truth.shape or prediction.ndim != 3:
        raise ValueError(f"prediction and truth must be 3D of one shape, got {prediction.shape} and {truth.shape}")
    for name, volume in (("prediction", prediction), ("truth", truth)):
        if volume.size and (volume.min() < 0 or volume.max() > MAX_LABEL):
            raise ValueError(f"{name} has labels outside 0..{MAX_LABEL}: {np.unique(volume).tolist()}")
    # Official quirk: SimpleITK's arrays are (z, y, x), but the spacing handed to the metrics is
    # GetSpacing(), (x, y, z), so spacing[0] pairs with z. The transpose reproduces both (and makes
    # the C order in which cc3d numbers components the same as panoptica's).
    prediction_zyx, truth_zyx = prediction.T, truth.T
    spacing_as_used = np.asarray(spacing, dtype=np.float64)
    if truth_zyx.any() or prediction_zyx.any():  # every group lies in the box of all labelled voxels
        box = _padded_box((truth_zyx > 0) | (prediction_zyx > 0))
        prediction_zyx, truth_zyx = np.ascontiguousarray(prediction_zyx[box]), np.ascontiguousarray(truth_zyx[box])
    truth_masks = {label: truth_zyx == label for label in range(1, MAX_LABEL + 1)}
    prediction_masks = {label: prediction_zyx == label for label in range(1, MAX_LABEL + 1)}
    row: dict[str, float] = {}
    for group, labels in GROUPS.items():
        reference_mask = np.logical_or.reduce([truth_masks[label] for label in labels])
        prediction_mask = np.logical_or.reduce([prediction_masks[label] for label in labels])
        row.update(_group_scores(reference_mask, prediction_mask, spacing_as_used, group))
    return row


def missing_prediction_row(columns_of_first_row: list[str] | None = None) -> dict[str, float]:
    """The parser's row for a reference without prediction: 0, and 373 for HD95 columns but the stds."""
    names = COLUMNS if columns_of_first_row is None else columns_of_first_row
    return {name: HD95_PENALTY if "hd95" in name and "std" not in name else 0.0 for name in names}


def _summary(values: np.ndarray) -> tuple[float, float, float]:
    """pandas' mean, std (ddof 1) and median of one column, NaN skipped."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    mean = values.sum() / len(values)
    with np.errstate(invalid="ignore"):  # inf - inf: pandas gives NaN too
        std = np.sqrt(((mean - values) ** 2).sum() / (len(values) - 1)) if len(values) > 1 else np.nan
    return float(mean), float(std), float(np.median(values))


def panoptica_table(scored: list[dict], missing: list[str] = ()) -> list[dict]:
    """The CSV's rows: the scored subjects, then the missing ones, then mean, std and median.

    Args:
        scored: one dict per evaluated subject: `subject_id` (the official uses the reference's file
            name) and the columns of `brats_panoptica_scores`, in evaluation order.
        missing: subject ids of references without a prediction (the parser appends their rows).

    Returns:
        list of row dicts, `subject_id` first, as brats-parse-metrics writes them.
    """
    rows = [dict(row) for row in scored]
    names = [name for name in rows[0] if name != "subject_id"] if rows else []
    rows += [{"subject_id": subject, **missing_prediction_row(names)} for subject in missing]
    summaries = {"mean": {}, "std": {}, "median": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in names:
            column = np.array([row.get(name, np.nan) for row in rows], dtype=np.float64)
            for stat, value in zip(summaries, _summary(column)):
                summaries[stat][name] = value
    rows += [{"subject_id": stat, **values} for stat, values in summaries.items()]
    return rows


# --- folders, as brats-evaluate reads them -----------------------------------------------------

# brats-evaluate's subject id in a reference's file name; a prediction is the file ending in "<id>.nii.gz".
SUBJECT_ID = re.compile(r"(\d{5}(?:-\d{3})?|\d{4}-\d{1,3})")


def score_files(prediction_path: Path, reference_path: Path) -> dict[str, float]:
    """brats_panoptica_scores of two NIfTI files, the spacing read from the reference's header."""
    reference = nib.load(reference_path)
    prediction = np.asanyarray(nib.load(prediction_path).dataobj)
    spacing = tuple(float(size) for size in reference.header.get_zooms()[:3])
    return brats_panoptica_scores(prediction, np.asanyarray(reference.dataobj), spacing)


def _score_job(job: tuple[str, Path, Path]) -> dict:
    subject, prediction_path, reference_path = job
    return {"subject_id": subject, **score_files(prediction_path, reference_path)}


def score_folders(reference_dir: Path | str, prediction_dir: Path | str, workers: int = 1) -> list[dict]:
    """The rows of `brats-evaluate --config gli` + `brats-parse-metrics seg` for two folders.

    References are the *.nii.gz files of `reference_dir` in name order (subject_id = file name); a
    reference whose id has no prediction file gets the parser's missing row, after the scored ones.
    `workers` > 1 scores subjects in that many processes.
    """
    reference_dir, prediction_dir = Path(reference_dir), Path(prediction_dir)
    predictions = sorted(path.name for path in prediction_dir.iterdir())
    jobs, missing = [], []
    for name in sorted(path.name for path in reference_dir.iterdir() if path.name.endswith(".nii.gz")):
        found = SUBJECT_ID.search(name)
        match = [p for p in predictions if found and p.endswith(f"{found.group(1)}.nii.gz")]
        if match:
            jobs.append((name, prediction_dir / match[0], reference_dir / name))
        else:
            missing.append(name)
    if workers > 1 and len(jobs) > 1:
        # Linux forks (no start-up cost; nothing unsafe to fork runs here), elsewhere spawns
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with context.Pool(min(workers, len(jobs))) as pool:
            scored = pool.map(_score_job, jobs, chunksize=1)
    else:
        scored = [_score_job(job) for job in jobs]
    return panoptica_table(scored, missing)
