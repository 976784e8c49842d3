"""The detector figures: the sweep widget's slice, ROC curves."""

import numpy as np

from ganet_lib import viz


def test_sweep_slice_widget_says_the_call_and_the_counts():
    image = np.zeros((40, 40))
    label = np.zeros((40, 40), np.uint8)
    label[10:20, 10:20] = 2
    d_map = np.full((6, 6), 0.3)
    counts = {"TP": 3, "FN": 1, "FP": 2, "TN": 4, "accuracy": 0.7, "sensitivity": 0.75}
    fig = viz.render_sweep_slice(image, d_map, label, 0.4, counts)
    assert "-> tumour (right)" in fig.axes[1].get_title()  # mean 0.3 <= 0.4, and the slice has tumour
    bars = [patch.get_width() for patch in fig.axes[2].patches]  # axes: slice, map, counts, colour bar
    assert sorted(bars) == [1, 2, 3, 4]
    fig = viz.render_sweep_slice(image, d_map, np.zeros_like(label), 0.2, counts)
    assert "-> normal (right)" in fig.axes[1].get_title()


def test_detector_rocs_draw_every_detector_with_position_dashed():
    from ganet_lib.studies.detector import DETECTORS

    curves = {
        name: {"fpr": np.array([0.0, 0.5, 1.0]), "tpr": np.array([0.0, 0.7, 1.0]), "auc": 0.6} for name in DETECTORS
    }
    fig = viz.plot_detector_rocs(curves, DETECTORS)
    lines = [line for line in fig.axes[0].get_lines() if line.get_label() and not line.get_label().startswith("_")]
    assert len(lines) == len(DETECTORS)  # a list of colours once cut the covariates off
    dashed = {line.get_label().split(":")[0] for line in lines if line.get_linestyle() == "--"}
    assert dashed == {DETECTORS["brain_area"], DETECTORS["centre_closeness"]}


def test_roc_and_distribution_figures_draw():
    fpr, tpr = np.array([0, 0.5, 1.0]), np.array([0, 0.8, 1.0])
    points = [{"threshold": 0.3, "sensitivity": 0.8, "specificity": 0.5}]
    fig = viz.plot_roc(fpr, tpr, 0.65, points, "kit", [{"threshold": 0.1, "sensitivity": 0.5, "fpr": 0.07}])
    assert "AUC 0.650" in fig.axes[0].get_legend().get_texts()[0].get_text()
    import pandas as pd

    frame = pd.DataFrame(
        {
            "region": ["WT", "TC", "ET"] * 2,
            "dice": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            "hd95": [1.0] * 6,
            "lw_dice": [0.5] * 6,
        }
    )
    fig = viz.plot_metric_distributions({"ganet": frame, "unet": frame})
    assert len(fig.axes) == 3
