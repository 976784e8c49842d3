"""Slice-position covariates and the position-controlled analyses, on hand-computable fixtures."""

import numpy as np
import pytest

from ganet_lib.evaluation.metrics import roc_auc
from ganet_lib.studies.position import (
    add_position_covariates,
    area_strata,
    average_precision,
    brain_centre,
    central,
    covariate_gain,
    grouped_folds,
    position_covariates,
    stratified_auc,
    subject_bootstrap,
)


def test_brain_area_and_centre_closeness_of_a_toy_volume():
    areas = np.array([0, 2, 4, 2, 0, 0])  # centre = (1*2 + 2*4 + 3*2) / 8 = 2
    assert brain_centre(areas) == 2.0
    covariates = position_covariates(areas)
    assert covariates["area_fraction"].tolist() == [0, 0.5, 1, 0.5, 0, 0]
    assert covariates["centre_closeness"].tolist() == pytest.approx(
        [-2 / 3, -1 / 3, 0, -1 / 3, -2 / 3, -1]
    )  # 3 brain slices
    rows = add_position_covariates(
        [{"subject": "a", "z": z, "brain_area": int(a)} for z, a in zip([3, 0, 1, 2, 4, 5], areas[[3, 0, 1, 2, 4, 5]])]
    )
    assert {r["z"]: r["centre_closeness"] for r in rows}[2] == 0.0 and {r["z"]: r["area_fraction"] for r in rows}[
        1
    ] == 0.5


def test_stratified_auc_against_a_hand_computation():
    # Two strata; inside each, the detector ranks every positive above every negative (AUC 1), but
    # stratum 0 scores 0-1 and stratum 1 scores 10-11: across strata it is useless or worse.
    scores = np.array([0.0, 0.5, 1.0, 10.0, 10.5, 11.0, 11.5])
    positive = np.array([False, True, True, False, False, True, True])
    strata = np.array([0, 0, 0, 1, 1, 1, 1])
    assert stratified_auc(scores, positive, strata) == 1.0
    # Plain AUC by hand: 4 positives x 3 negatives = 12 pairs; the positives 0.5 and 1.0 lose to 10 and 10.5 (4 pairs
    # lost)
    assert roc_auc(scores, positive) == pytest.approx(8 / 12)
    flipped = np.where(strata == 1, -scores, scores)  # inverted inside stratum 1: 2 x 2 = 4 pairs lost, 2 x 1 = 2 won
    assert stratified_auc(flipped, positive, strata) == pytest.approx((1.0 * 2 + 0.0 * 4) / 6)
    with pytest.raises(ValueError):
        stratified_auc(scores[:3], positive[:3], np.array([0, 1, 1]))  # no stratum with both classes
    assert area_strata(np.arange(10.0), 5).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_average_precision_by_hand_and_its_chance_level():
    # ranked: P N P N: precision at the positives 1/1 and 2/3 -> AP = (1 + 2/3) / 2
    assert average_precision(np.array([4.0, 3, 2, 1]), np.array([True, False, True, False])) == pytest.approx(5 / 6)
    rng = np.random.default_rng(0)
    positive = rng.random(20_000) < 0.3
    assert average_precision(rng.random(20_000), positive) == pytest.approx(
        0.3, abs=0.02
    )  # a useless score: the prevalence


def test_the_subject_bootstrap_holds_the_estimate_and_narrows_with_more_subjects():
    rng = np.random.default_rng(1)

    def data(subjects):
        ids = np.repeat(np.arange(subjects), 20)
        positive = rng.random(len(ids)) < 0.4
        return ids, positive, positive + rng.normal(0, 1.2, len(ids))

    widths = []
    for n in (10, 250):  # (with very few subjects the percentile interval is too narrow: a known small-sample bias)
        ids, positive, scores = data(n)
        low, high = subject_bootstrap(lambda i: roc_auc(scores[i], positive[i]), ids, samples=400)
        assert low <= roc_auc(scores, positive) <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def test_grouped_folds_never_share_a_subject_and_cover_every_slice():
    subjects = np.repeat(np.array(["a", "b", "c", "d", "e", "f", "g"]), 3)
    folds = grouped_folds(subjects, 5)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(subjects)))
    for train, test in folds:
        assert not set(subjects[train]) & set(subjects[test])


def test_the_gain_over_position_is_large_for_a_real_signal_and_small_for_noise():
    rng = np.random.default_rng(2)
    subjects = np.repeat(np.arange(30), 16)
    area = np.tile(np.sin(np.linspace(0.1, np.pi - 0.1, 16)), 30)  # central slices: large area
    positive = rng.random(len(area)) < area * 0.7  # tumour more likely where the area is large
    covariates = np.column_stack([area, -np.abs(np.tile(np.arange(16), 30) - 7.5)])
    signal = covariate_gain(covariates, positive + rng.normal(0, 0.5, len(area)), positive, subjects, samples=200)
    noise = covariate_gain(covariates, rng.normal(0, 1, len(area)), positive, subjects, samples=200)
    assert signal["gain"] > 0.1 and signal["gain_low"] > 0
    assert abs(noise["gain"]) < 0.03 and noise["gain_low"] < 0 < noise["gain_high"] + 0.01


def test_central_slices():
    assert central(np.array([0.2, 0.5, 0.9]), 0.5).tolist() == [False, True, True]
