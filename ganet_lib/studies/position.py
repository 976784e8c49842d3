"""Slice position: what a slice-level tumour detector has to beat, and analyses that control for it.

Under the paper's Table 1 protocol every axial slice of a test subject counts. Tumour-free slices
are then mostly near the top and bottom of the brain (little brain in them), tumour slices are
central: any score that follows slice position, such as the brain area of a slice or its mean
T1 (central slices hold much bright white matter), separates the two classes without seeing a
tumour. Published slice-level protocols keep a central range of slices instead (slices 15-135 in
Lagogiannis et al. 2023, IEEE TMI; 20 edge slices dropped by Zimmerer et al.; slices 15-125 in
Meissen et al. 2021; SPEC section 8).

This module gives each slice two position covariates and asks three ways what a detector adds
beyond them (the statistics' building blocks are scikit-learn's where it has them):

- `position_covariates`: the brain area of a slice, its fraction of the subject's largest, and
  its closeness to the subject's brain-centre slice (the area-weighted mean slice index);
- a position-controlled protocol (`central`): only slices with at least `fraction` of the
  subject's largest brain area;
- `stratified_auc`: the AUC over pairs of slices from the same stratum of brain area only;
- `covariate_gain`: a logistic regression on the covariates alone against the covariates plus the
  detector's score (scikit-learn's `LogisticRegression`), cross-validated with folds grouped by
  subject (`GroupKFold`), and the out-of-fold AUC gain;

and threshold-free figures with intervals: `average_precision` (scikit-learn's; chance level: the
prevalence)
and `subject_bootstrap` (95 % intervals that resample test subjects, not slices, since the slices
of one subject are not independent).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ganet_lib.evaluation.metrics import roc_auc

# 1,000 resamples (the ablation draws 10,000): each resample here ranks thousands of slices for
# every detector, and 1,000 puts a 95 % interval's ends within about 0.005 AUC of their limit.
BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
STRATA = 5  # quintiles of brain area over the test slices
FOLDS = 5
L2 = 1e-2  # the logistic regression's penalty (l2 / 2) |w|^2 on the standardised covariates; a guess
COVARIATES = ("brain_area", "centre_closeness")


# --- covariates -----------------------------------------------------------------------------------


def brain_centre(areas: np.ndarray) -> float:
    """The area-weighted mean slice index of a subject: sum(z * area) / sum(area); the middle slice without brain."""
    areas = np.asarray(areas, float)
    if areas.sum() == 0:
        return (len(areas) - 1) / 2
    return float((np.arange(len(areas)) * areas).sum() / areas.sum())


def position_covariates(areas: np.ndarray) -> dict[str, np.ndarray]:
    """Per slice of one subject, from its brain areas (Z,): brain_area (pixels), area_fraction (of
    the subject's largest slice), relative_position = (z - centre) / (number of brain slices) and
    centre_closeness = -|relative_position|, so that higher means "closer to the centre"."""
    areas = np.asarray(areas, float)
    centre = brain_centre(areas)
    extent = max(1, int((areas > 0).sum()))
    largest = areas.max() if areas.size and areas.max() > 0 else 1.0
    relative = (np.arange(len(areas)) - centre) / extent
    return {
        "brain_area": areas,
        "area_fraction": areas / largest,
        "relative_position": relative,
        "centre_closeness": -np.abs(relative),
    }


def add_position_covariates(rows: list[dict]) -> list[dict]:
    """`rows` (one per slice, with subject, z and brain_area) with area_fraction, relative_position and
    centre_closeness added, per subject."""
    by_subject: dict[str, list[dict]] = {}
    for row in rows:
        by_subject.setdefault(row["subject"], []).append(row)
    for subject_rows in by_subject.values():
        ordered = sorted(subject_rows, key=lambda r: r["z"])
        covariates = position_covariates(np.array([r["brain_area"] for r in ordered]))
        for i, row in enumerate(ordered):
            for name in ("area_fraction", "relative_position", "centre_closeness"):
                row[name] = float(covariates[name][i])
    return rows


# --- threshold-free figures -------------------------------------------------------------------------


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Average precision of "higher score = positive" (scikit-learn's `average_precision_score`):
    sum over distinct thresholds of (recall step) x precision; tied scores enter together. Chance
    level is the prevalence.

    Raises:
        ValueError: no positive (scikit-learn would warn and return 0; the subject bootstrap skips
            such samples, as it does for the AUC).
    """
    positive = np.asarray(positive, bool).ravel()
    if not positive.any():
        raise ValueError("average precision needs at least one positive")
    return float(average_precision_score(positive, np.asarray(scores, float).ravel()))


def subject_bootstrap(
    statistic, subjects: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of `statistic(indices)` over bootstrap samples of the subjects: each
    sample draws subjects with replacement and takes all their slices (a subject drawn twice
    counts twice). Samples where the statistic is undefined (ValueError: one class missing) are
    skipped.

    Args:
        statistic: indices into the slices -> float.
        subjects: (N,) the subject of each slice.
    """
    subjects = np.asarray(subjects)
    ids = np.unique(subjects)
    members = [np.flatnonzero(subjects == s) for s in ids]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        drawn = rng.integers(0, len(ids), len(ids))
        try:
            values.append(statistic(np.concatenate([members[i] for i in drawn])))
        except ValueError:
            continue
    if not values:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


# --- controlling for position ------------------------------------------------------------------------


def central(area_fraction: np.ndarray, fraction: float) -> np.ndarray:
    """The position-controlled protocol's slices: brain area at least `fraction` of the subject's largest."""
    return np.asarray(area_fraction, float) >= fraction


def area_strata(brain_area: np.ndarray, strata: int = STRATA) -> np.ndarray:
    """Stratum 0 .. strata-1 of each slice: quantiles of brain area over the given slices."""
    edges = np.quantile(np.asarray(brain_area, float), np.linspace(0, 1, strata + 1)[1:-1])
    return np.searchsorted(edges, brain_area, side="right")


def stratified_auc(scores: np.ndarray, positive: np.ndarray, strata: np.ndarray) -> float:
    """AUC over the (positive, negative) pairs within one stratum only, pooled: the within-stratum
    AUCs weighted by their number of pairs. A detector perfect inside every stratum scores 1 however
    the strata compare with each other.

    Raises:
        ValueError: no stratum holds both a positive and a negative.
    """
    scores, positive, strata = np.asarray(scores, float), np.asarray(positive, bool), np.asarray(strata)
    total, pairs = 0.0, 0
    for stratum in np.unique(strata):
        inside = strata == stratum
        n_pos, n_neg = int(positive[inside].sum()), int((~positive[inside]).sum())
        if n_pos and n_neg:
            total += roc_auc(scores[inside], positive[inside]) * n_pos * n_neg
            pairs += n_pos * n_neg
    if pairs == 0:
        raise ValueError("no stratum holds both classes")
    return total / pairs


def grouped_folds(subjects: np.ndarray, folds: int = FOLDS, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) slice indices of `folds` folds that split the subjects, not the slices:
    scikit-learn's `GroupKFold`, the subjects shuffled (seeded), then cut into folds whose subject
    counts differ by at most one."""
    subjects = np.asarray(subjects)
    splitter = GroupKFold(n_splits=min(folds, len(np.unique(subjects))), shuffle=True, random_state=seed)
    return list(splitter.split(subjects, groups=subjects))


def out_of_fold_scores(
    features: np.ndarray, positive: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], l2: float = L2
) -> np.ndarray:
    """Each slice's logistic-regression score (the linear predictor) from the fold that held its
    subject out: features standardised with the training fold's mean and sd, then an L2-regularised
    logistic regression (penalty (l2 / 2) |w|^2, intercept not penalised, so C = 1 / l2)."""
    features = np.asarray(features, float).reshape(len(positive), -1)
    out = np.full(len(positive), np.nan)
    for train, test in folds:
        # newton-cholesky with a tight tolerance: the optimum itself (the kit's own Newton iteration,
        # before scikit-learn, gave the same weights within 2e-9 on 200 random problems).
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0 / l2, solver="newton-cholesky", tol=1e-10, max_iter=100)
        )
        model.fit(features[train], positive[train])
        out[test] = model.decision_function(features[test])
    return out


def covariate_gain(
    covariates: np.ndarray,
    score: np.ndarray,
    positive: np.ndarray,
    subjects: np.ndarray,
    folds: int = FOLDS,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict:
    """Out-of-fold AUC of the covariates alone and of the covariates plus `score` (folds grouped by
    subject), their difference, and its 95 % interval from a bootstrap over subjects (of the same
    out-of-fold predictions)."""
    positive = np.asarray(positive, bool)
    split = grouped_folds(subjects, folds, seed)
    alone = out_of_fold_scores(covariates, positive, split)
    both = out_of_fold_scores(np.column_stack([covariates, score]), positive, split)
    low, high = subject_bootstrap(
        lambda i: roc_auc(both[i], positive[i]) - roc_auc(alone[i], positive[i]), subjects, samples, seed=seed
    )
    auc_alone, auc_both = roc_auc(alone, positive), roc_auc(both, positive)
    return {
        "auc_covariates": auc_alone,
        "auc_with_score": auc_both,
        "gain": auc_both - auc_alone,
        "gain_low": low,
        "gain_high": high,
        "folds": len(split),
    }


# --- the table --------------------------------------------------------------------------------------


def _or_nan(compute) -> float:
    """`compute()`, or NaN where it is undefined (one class missing from the slices it needs)."""
    try:
        return compute()
    except ValueError:
        return float("nan")


def position_table(
    rows: list[dict], detectors: dict[str, str], fraction: float, samples: int = BOOTSTRAP_SAMPLES
) -> list[dict]:
    """Per detector present in `rows` (one per full-size slice, with the covariates of
    `add_position_covariates`): ROC AUC and AP with subject-bootstrap intervals, AP's chance level,
    the AUC on the central slices, the AUC within strata of brain area, and the cross-validated AUC
    gain over the position covariates (not for the covariates themselves)."""
    positive = np.array([r["positive"] for r in rows])
    subjects = np.array([r["subject"] for r in rows])
    covariates = np.column_stack([[r[c] for r in rows] for c in COVARIATES])
    middle = central(np.array([r["area_fraction"] for r in rows]), fraction)
    strata = area_strata(np.array([r["brain_area"] for r in rows]))
    table = []
    for name, description in detectors.items():
        if not rows or name not in rows[0]:
            continue
        scores = np.array([r[name] for r in rows])
        auc_low, auc_high = subject_bootstrap(lambda i: roc_auc(scores[i], positive[i]), subjects, samples)
        ap_low, ap_high = subject_bootstrap(lambda i: average_precision(scores[i], positive[i]), subjects, samples)
        central_auc, within = (
            _or_nan(lambda: roc_auc(scores[middle], positive[middle])),
            _or_nan(lambda: stratified_auc(scores, positive, strata)),
        )
        # The gain needs folds that hold subjects out: at least two subjects.
        gain = (
            covariate_gain(covariates, scores, positive=positive, subjects=subjects, samples=samples)
            if name not in COVARIATES and len(set(subjects)) > 1
            else None
        )
        table.append(
            {
                "detector": name,
                "what": description,
                "AUC": roc_auc(scores, positive),
                "AUC low": auc_low,
                "AUC high": auc_high,
                "AP": average_precision(scores, positive),
                "AP low": ap_low,
                "AP high": ap_high,
                "AP chance": float(positive.mean()),
                f"AUC central (area >= {fraction:g} of max)": central_auc,
                "AUC within area strata": within,
                "AUC gain over position": gain["gain"] if gain else float("nan"),
                "gain low": gain["gain_low"] if gain else float("nan"),
                "gain high": gain["gain_high"] if gain else float("nan"),
            }
        )
    return table


def detector_summary(table: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of `detector_table` as the CLI, notebook 05, the report and the results file show it."""

    def number(value: float) -> str:
        return "" if value != value else f"{value:.3f}"

    def interval(row: dict, value: str, low: str, high: str, signed: bool = False) -> str:
        if row.get(value, float("nan")) != row.get(value, float("nan")):
            return ""
        f = "{:+.3f}" if signed else "{:.3f}"
        return f"{f.format(row[value])} [{f.format(row[low])}, {f.format(row[high])}]"

    central_key = next((k for k in (table[0] if table else {}) if k.startswith("AUC central")), "AUC central")
    header = [
        "Detector (higher = tumour)",
        "ROC AUC [95% CI]",
        "AP [95% CI]",
        "AP chance",
        "AUC as trained",
        central_key.replace("AUC central", "AUC, central slices"),
        "AUC within area strata",
        "AUC gain over position [95% CI]",
    ]
    rows = [
        [
            row["what"],
            interval(row, "AUC full size", "AUC low", "AUC high"),
            interval(row, "AP", "AP low", "AP high"),
            number(row.get("AP chance", float("nan"))),
            number(row["AUC as trained"]),
            number(row.get(central_key, float("nan"))),
            number(row.get("AUC within area strata", float("nan"))),
            interval(row, "AUC gain over position", low="gain low", high="gain high", signed=True),
        ]
        for row in table
    ]
    return header, rows


def read_detector_table(path) -> list[dict]:
    """RUN/tables/detectors_auc.csv as `detector_table` wrote it (numbers as floats, empty cells NaN);
    [] when missing."""

    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        records = list(csv.DictReader(handle))
    return [
        {k: (v if k in ("detector", "what") else float(v) if v != "" else float("nan")) for k, v in r.items()}
        for r in records
    ]


def takeaway(table: list[dict]) -> str:
    """What this run's Table 1 can and cannot show, in a few sentences with its numbers (rows of `detector_table`)."""
    rows = {row["detector"]: row for row in table}
    need = ("d_mean", "brain_area")
    if any(name not in rows or rows[name]["AUC full size"] != rows[name]["AUC full size"] for name in need):
        return "Not enough detectors in this table to compare the discriminator with slice position."
    d, area = rows["d_mean"], rows["brain_area"]
    central_key = next(k for k in d if k.startswith("AUC central"))
    gain_known = d["gain low"] == d["gain low"]
    adds = gain_known and d["gain low"] > 0
    text = (
        f"Slice position alone, the brain area of a slice, separates tumour slices from tumour-free ones with ROC AUC "
        f"{area['AUC full size']:.3f} [{area['AUC low']:.3f}, {area['AUC high']:.3f}], against "
        f"{d['AUC full size']:.3f} "
        f"[{d['AUC low']:.3f}, {d['AUC high']:.3f}] for the discriminator's mean map and the about 0.87 the paper's "
        "four operating "
        "points imply. Compared only between slices of similar brain area the discriminator scores "
        f"{d['AUC within area strata']:.3f} "
        f"(0.5 is chance), on the central slices ({central_key.removeprefix('AUC central ').strip('()')}) "
        f"{d[central_key]:.3f}"
    )
    if gain_known:
        text += (
            ", and added to the position covariates in a subject-grouped cross-validated logistic regression it "
            "changes the AUC by "
            f"{d['AUC gain over position']:+.3f} [{d['gain low']:+.3f}, {d['gain high']:+.3f}]"
        )
    text += (
        ". So an AUC like the paper's can come from slice position alone under its protocol (every axial slice counts, "
        "the tumour-free ones mostly at the top and bottom of the brain); it shows tumour detection only where a "
        "detector beats "
        f"position, which the discriminator on this run {'does' if adds else 'does not'}"
        + ("" if adds else " (its gain's interval reaches 0 or lies below it)")
        + "."
    )
    if "t1_mean" in rows and rows["t1_mean"]["AUC full size"] == rows["t1_mean"]["AUC full size"]:
        t1 = rows["t1_mean"]["AUC full size"]
        text += (
            f" The mean T1 row's AUC of {t1:.3f} is position too: central slices hold much bright white matter, so "
            '"lower T1 = tumour" (the direction fixed beforehand, since a tumour darkens T1) ranks the slices '
            "backwards "
            f"(the opposite ordering scores {1 - t1:.3f})."
        )
    return text
