"""Evaluation metrics on numpy arrays (no torch: evaluation runs anywhere, fast)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the `positive` class.

    The probability that a random positive scores higher than a random negative, ties counting
    half (the Mann-Whitney U statistic divided by n_pos * n_neg). 0.5 is chance.

    Raises:
        ValueError: no positive or no negative.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(positive, dtype=bool).ravel()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"the AUC needs positives and negatives, got {n_pos} and {n_neg}")
    ranks = rankdata(scores)  # 1-based, ties get their mean rank
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice = 2 |P n T| / (|P| + |T|) of two boolean masks of one shape.

    Empty-mask rule (as the BraTS evaluation): both empty -> 1.0; one empty -> 0.0.
    """
    prediction = np.asarray(prediction, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction and truth must have the same shape, got {prediction.shape} and {truth.shape}")
    total = int(prediction.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(prediction, truth).sum()) / total


def region_dice(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Whole-volume Dice of the regions WT, TC, ET between two 0/1/2/4 label volumes."""
    from ganet_lib.data import REGIONS

    return {region: dice(np.isin(prediction, labels), np.isin(truth, labels)) for region, labels in REGIONS.items()}
