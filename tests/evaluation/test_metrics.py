"""Evaluation metrics against hand-computed values (SPEC section 5)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from ganet_lib.config import GanConfig, ModelConfig
from ganet_lib.evaluation.metrics import (
    brats_scores,
    dice,
    lesion_scores,
    paper_slicewise_scores,
    region_dice,
    roc_auc,
    roc_curve,
    slice_best_match_dice,
    slice_hd95_pixels,
)


def cube(shape, *ranges):
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in ranges)] = True
    return mask


# --- the brats protocol ----------------------------------------------------------------------


def test_worked_example_of_spec():
    shape = (64, 64, 64)
    truth = cube(shape, (10, 20), (10, 20), (10, 20)) | cube(shape, (40, 46), (40, 46), (40, 46))
    prediction = cube(shape, (11, 21), (10, 20), (10, 20)) | cube(shape, (10, 14), (44, 48), (44, 48))
    scores = lesion_scores(prediction, truth)
    lesion_a = next(lesion for lesion in scores.lesions if lesion.matched)
    assert lesion_a.dice == pytest.approx(0.9, abs=1e-6)
    assert lesion_a.hd95 == pytest.approx(1.0, abs=1e-6)
    assert scores.lw_dice == pytest.approx(0.3, abs=1e-6)
    assert scores.lw_hd95 == pytest.approx(249.666667, abs=1e-6)
    assert (scores.tp, scores.fn, scores.fp) == (1, 1, 1)
    assert scores.dice == pytest.approx(0.789474, abs=1e-6)
    assert scores.hd95 == pytest.approx(32.0, abs=1e-6)


def test_both_empty_and_one_empty():
    empty = np.zeros((30, 30, 30), bool)
    lesion = cube(empty.shape, (10, 20), (10, 20), (10, 20))
    both = lesion_scores(empty, empty)
    assert (both.dice, both.hd95, both.lw_dice, both.lw_hd95, both.tp, both.fn, both.fp) == (
        1.0,
        0.0,
        1.0,
        0.0,
        0,
        0,
        0,
    )
    missed = lesion_scores(empty, lesion)
    assert (missed.dice, missed.hd95, missed.lw_dice, missed.lw_hd95, missed.tp, missed.fn, missed.fp) == (
        0.0,
        374.0,
        0.0,
        374.0,
        0,
        1,
        0,
    )
    invented = lesion_scores(lesion, empty)
    assert (
        invented.dice,
        invented.hd95,
        invented.lw_dice,
        invented.lw_hd95,
        invented.tp,
        invented.fn,
        invented.fp,
    ) == (0.0, 374.0, 0.0, 374.0, 0, 0, 1)


def test_one_voxel_shift():
    truth = cube((40, 40, 40), (10, 20), (10, 20), (10, 20))
    scores = lesion_scores(np.roll(truth, 1, axis=1), truth)
    assert scores.dice == pytest.approx(0.9) and scores.lw_dice == pytest.approx(0.9)
    assert scores.hd95 == pytest.approx(1.0) and scores.lw_hd95 == pytest.approx(1.0)
    assert (scores.tp, scores.fn, scores.fp) == (1, 0, 0)


@pytest.mark.parametrize("gap, lesions", [(6, 1), (7, 2)])
def test_lesions_within_reach_of_the_dilation_merge(gap, lesions):
    # Two 5-voxel cubes `gap` empty slices apart; three 18-neighbour dilations reach 3 voxels each
    # way, so a gap of 6 leaves the dilated cubes touching (merged), a gap of 7 does not.
    shape = (30, 30, 40)
    first = cube(shape, (10, 15), (10, 15), (5, 10))
    second = cube(shape, (10, 15), (10, 15), (10 + gap, 15 + gap))
    scores = lesion_scores(first, first | second)  # the prediction finds the first cube only
    assert len(scores.lesions) == lesions
    if lesions == 1:  # one lesion of 250 voxels against the 125 predicted
        assert scores.lw_dice == pytest.approx(2 * 125 / 375)
        assert (scores.tp, scores.fn, scores.fp) == (1, 0, 0)
    else:
        assert scores.lw_dice == pytest.approx(0.5)  # (1 + 0) / 2
        assert (scores.tp, scores.fn, scores.fp) == (1, 1, 0)


def test_a_component_spanning_two_lesions_counts_for_both():
    shape = (30, 30, 50)
    truth = cube(shape, (10, 15), (10, 15), (10, 15)) | cube(shape, (10, 15), (10, 15), (30, 35))
    bar = cube(shape, (10, 15), (10, 15), (10, 35))  # 625 voxels over both lesions and the gap
    scores = lesion_scores(bar, truth)
    assert [lesion.matched for lesion in scores.lesions] == [(1,), (1,)]
    assert [lesion.dice for lesion in scores.lesions] == pytest.approx([250 / 750, 250 / 750])
    assert scores.lw_dice == pytest.approx(1 / 3)
    assert (scores.tp, scores.fn, scores.fp) == (2, 0, 0)
    assert scores.dice == pytest.approx(2 * 250 / 875)


def test_tiny_lesions_are_ignored_and_spacing_decides_what_is_tiny():
    shape = (40, 40, 40)
    big = cube(shape, (5, 15), (5, 15), (5, 15))
    tiny = cube(shape, (30, 33), (30, 33), (30, 33))  # 27 voxels
    # 27 mm^3 at 1 mm: ignored, and the component that finds it is not a false positive.
    found = lesion_scores(big | tiny, big | tiny)
    assert (found.tp, found.fn, found.fp) == (1, 0, 0) and found.lw_dice == pytest.approx(1.0)
    missed = lesion_scores(big, big | tiny)
    assert (missed.tp, missed.fn, missed.fp) == (1, 0, 0) and missed.lw_dice == pytest.approx(1.0)
    assert [lesion.counted for lesion in missed.lesions] == [True, False]
    # At 1 x 1 x 2.5 mm the same 27 voxels are 67.5 mm^3: a lesion that counts, and is missed.
    anisotropic = lesion_scores(big, big | tiny, spacing=(1.0, 1.0, 2.5))
    assert (anisotropic.tp, anisotropic.fn, anisotropic.fp) == (1, 1, 0)
    assert anisotropic.lw_dice == pytest.approx(0.5)
    assert anisotropic.lw_hd95 == pytest.approx((0.0 + 374.0) / 2)


def test_brats_regions_from_labels():
    truth = np.zeros((30, 30, 30), np.uint8)
    truth[5:15, 5:15, 5:15] = 2  # edema
    truth[8:12, 8:12, 8:12] = 4  # enhancing core inside
    prediction = np.where(truth == 4, 1, truth).astype(np.uint8)  # ET called necrosis
    scores = brats_scores(prediction, truth)
    assert scores["WT"].dice == 1.0 and scores["TC"].dice == 1.0  # 1 and 4 are both in WT and TC
    assert scores["ET"].dice == 0.0 and scores["ET"].fn == 1


# --- the paper-slicewise protocol ------------------------------------------------------------


def test_slice_hd95_of_a_one_pixel_shift_is_ten():
    truth = np.zeros((10, 10), bool)
    truth[2:6, 2:6] = True
    prediction = np.roll(truth, 1, axis=0)
    # Each border ring has 12 pixels, 6 on the other ring (distance 0), 6 one pixel away:
    # the pooled 95th percentile is 1 pixel, reported x 10.
    assert slice_hd95_pixels(prediction, truth) == pytest.approx(10.0)
    assert slice_hd95_pixels(prediction, np.zeros_like(truth)) == 0.0  # either empty: 0


def test_slice_best_match_dice_never_penalises_misses():
    truth = np.zeros((20, 20), bool)
    truth[2:5, 2:5] = truth[10:14, 10:14] = True
    prediction = np.zeros_like(truth)
    prediction[2:5, 2:5] = True  # finds one lesion exactly ...
    assert slice_best_match_dice(prediction, truth) == 1.0  # ... and the missed one costs nothing
    prediction[17:19, 17:19] = True  # a false component scores 0
    assert slice_best_match_dice(prediction, truth) == pytest.approx(0.5)
    assert slice_best_match_dice(np.zeros_like(truth), truth) == 1.0  # no predicted component: 1


def test_paper_slicewise_means_over_slices_with_the_authors_columns():
    truth = np.zeros((10, 10, 4), np.uint8)
    prediction = np.zeros_like(truth)
    truth[2:6, 2:6, 0] = prediction[2:6, 2:6, 0] = 1  # slice 0: perfect
    truth[2:6, 2:6, 1] = 1  # slice 1: missed (Dice 0; HD95 0 and best-match 1 by the authors' rules)
    prediction[2:6, 2:6, 2] = 1  # slice 2: invented (Dice 0, best-match 0)
    scores = paper_slicewise_scores(prediction, truth)  # slice 3: both empty (Dice 1)
    assert scores["WT"] == pytest.approx({"dice": 0.5, "hd95": 0.0, "lw_dice": 0.75})  # "WT" is label 1
    assert scores["ET"] == {"dice": 1.0, "hd95": 0.0, "lw_dice": 1.0}  # label 2: empty everywhere
    truth[:, :, :] = 0
    truth[3:5, 3:5, 0] = 2
    assert paper_slicewise_scores(np.zeros_like(truth), truth)["ET"]["dice"] == pytest.approx(0.75)  # label 2 is "ET"


# --- other metrics ---------------------------------------------------------------------------


def test_dice_rules():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    assert dice(a, b) == 1.0
    b[0, 0] = True
    assert dice(a, b) == 0.0
    a[0, :2] = True
    assert dice(a, b) == pytest.approx(2 / 3)


def test_roc_curve_area_equals_auc():
    rng = np.random.default_rng(0)
    positive = rng.random(200) < 0.4
    scores = rng.normal(positive * 1.0, 1.0).round(1)  # ties included
    fpr, tpr, _ = roc_curve(scores, positive)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(scores, positive))


def test_metrics_do_not_import_torch():
    code = (
        "import sys, ganet_lib.evaluation.metrics, ganet_lib.evaluation.evaluate; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the faster evaluation gives the same numbers ------------------------------------------


def test_label_components_equal_scipy_26_connectivity():
    from scipy import ndimage

    from ganet_lib.evaluation.metrics import label_components

    rng = np.random.default_rng(3)
    mask = ndimage.binary_opening(rng.random((40, 36, 30)) > 0.6)
    expected, count = ndimage.label(mask, np.ones((3, 3, 3), bool))
    labels, n = label_components(mask)
    assert n == count > 10
    assert np.array_equal(labels, expected)  # same components, same numbering


def test_brats_scores_do_not_depend_on_the_empty_margin_or_memory_order():
    # The scores are computed in the tumours' box: a case embedded in a larger empty volume, stored
    # in Fortran order as NIfTI arrays come, must give exactly the same numbers.
    rng = np.random.default_rng(5)
    truth = np.zeros((30, 30, 30), np.uint8)
    truth[8:20, 8:20, 8:20] = 2
    truth[11:17, 11:17, 11:17] = 1
    truth[13:15, 13:15, 13:15] = 4
    prediction = np.roll(truth, 1, axis=0)
    prediction[25:28, 2:5, 2:5] = 4  # a false positive near the border
    prediction[rng.random(truth.shape) > 0.995] = 2  # stray voxels
    small = brats_scores(prediction, truth, (1.0, 1.2, 0.9))
    big_truth, big_prediction = np.zeros((70, 50, 60), np.uint8), np.zeros((70, 50, 60), np.uint8)
    big_truth[20:50, 10:40, 15:45], big_prediction[20:50, 10:40, 15:45] = truth, prediction
    big = brats_scores(np.asfortranarray(big_prediction), np.asfortranarray(big_truth), (1.0, 1.2, 0.9))
    for region in ("WT", "TC", "ET"):
        a, b = small[region], big[region]
        assert (a.dice, a.hd95, a.lw_dice, a.lw_hd95, a.tp, a.fn, a.fp) == (
            b.dice,
            b.hd95,
            b.lw_dice,
            b.lw_hd95,
            b.tp,
            b.fn,
            b.fp,
        )
    assert small["WT"].fp > 0


def confident_logits(classes: torch.Tensor) -> torch.Tensor:
    """(B, H, W) class indices -> logits whose softmax is one-hot to float precision."""
    return torch.nn.functional.one_hot(classes, 4).permute(0, 3, 1, 2).float() * 50


def test_dice_of_known_masks():
    p = np.zeros((4, 4), bool)
    t = np.zeros((4, 4), bool)
    p[0, :4] = True  # 4 pixels
    t[0, 2:4] = True
    t[1, 0:2] = True  # 4 pixels, 2 shared
    assert dice(p, t) == 0.5
    assert dice(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0  # both empty
    assert dice(p, np.zeros_like(p)) == 0.0  # one empty
    with pytest.raises(ValueError, match="same shape"):
        dice(p, t[:3])


def test_region_dice_uses_nested_regions():
    truth = np.array([0, 1, 2, 4, 4])
    prediction = np.array([0, 2, 2, 4, 0])  # NCR called edema, one ET voxel missed
    scores = region_dice(prediction, truth)
    assert scores["WT"] == pytest.approx(2 * 3 / (3 + 4))  # WT {1,2,4}: predicted 3 of 4
    assert scores["TC"] == pytest.approx(2 * 1 / (1 + 3))  # TC {1,4}: predicted {4} vs {1,4,4}
    assert scores["ET"] == pytest.approx(2 * 1 / (1 + 2))


MODEL = ModelConfig(gen_channels=(4, 8, 16), disc_channels=4)
GAN = GanConfig(epochs=3, batch_size=8, patience=100, seed=3)


def test_roc_auc_by_hand():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert roc_auc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5
