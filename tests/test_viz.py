import matplotlib.colors
import numpy as np
import pytest
from matplotlib.figure import Figure

from ganet_lib import viz
from ganet_lib.data import find_brats_cases, load_case


@pytest.fixture(scope="module")
def case(synthetic_root):
    image, label, _ = load_case(find_brats_cases(synthetic_root / "brats")[0])
    return image, label, int(np.argmax(label.astype(bool).sum(axis=(0, 1))))


def test_render_enhancement_is_what_the_slider_draws(case):
    image, _, z = case
    fig = viz.render_enhancement(image[1][:, :, z].T, -0.8)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    before, after = (ax.get_images()[0].get_array() for ax in fig.axes[:2])
    assert before.shape == after.shape == (image.shape[2], image.shape[1])  # (Y, X): the slice as shown
    assert float(np.mean(after)) > float(np.mean(before))  # the enhancement brightens


def test_label_overlay_colours_each_label(case):
    _, label, z = case
    fig = viz.plot_modalities(*case[:2], z)
    overlay = fig.axes[-1].get_images()[-1].get_array()  # RGBA of the label overlay
    slice_labels = label[:, :, z].T
    assert np.all(overlay[slice_labels == 0][:, 3] == 0)  # background transparent
    for value in np.unique(slice_labels[slice_labels > 0]):
        expected = matplotlib.colors.to_rgb(viz.LABEL_COLOURS["brats"][int(value)][1])
        np.testing.assert_allclose(overlay[slice_labels == value][0][:3], expected)


def test_save_figure_writes_a_png(case, tmp_path):
    fig = viz.plot_regions(case[0], case[1], case[2])
    path = viz.save_figure(fig, tmp_path / "sub" / "regions.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["regions.png"]  # no temporary file left


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


def test_case_errors_colour_found_missed_and_false_voxels():
    truth = np.zeros((30, 30), np.uint8)
    prediction = np.zeros_like(truth)
    truth[5:15, 5:15] = 2
    prediction[10:20, 10:20] = 2
    fig = viz.render_case_errors(np.ones((30, 30)), truth, prediction, "WT")
    errors = fig.axes[3].get_images()[-1].get_array()
    def colour_at(r, c):
        return tuple(np.round(errors[r, c, :3], 3))
    from matplotlib.colors import to_rgb
    assert colour_at(12, 12) == tuple(np.round(to_rgb(viz.ERROR_COLOURS["TP"]), 3))
    assert colour_at(6, 6) == tuple(np.round(to_rgb(viz.ERROR_COLOURS["FN"]), 3))
    assert colour_at(18, 18) == tuple(np.round(to_rgb(viz.ERROR_COLOURS["FP"]), 3))
    assert errors[0, 0, 3] == 0  # correct background stays transparent
    assert "Dice 0.25" in fig.axes[3].get_title()  # 2 * 25 / (100 + 100)


def test_roc_and_distribution_figures_draw():
    fpr, tpr = np.array([0, 0.5, 1.0]), np.array([0, 0.8, 1.0])
    points = [{"threshold": 0.3, "sensitivity": 0.8, "specificity": 0.5}]
    fig = viz.plot_roc(fpr, tpr, 0.65, points, "kit", [{"threshold": 0.1, "sensitivity": 0.5, "fpr": 0.07}])
    assert "AUC 0.650" in fig.axes[0].get_legend().get_texts()[0].get_text()
    import pandas as pd
    frame = pd.DataFrame({"region": ["WT", "TC", "ET"] * 2, "dice": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], "hd95": [1.0] * 6, "lw_dice": [0.5] * 6})
    fig = viz.plot_metric_distributions({"ganet": frame, "unet": frame})
    assert len(fig.axes) == 3


def test_detector_rocs_draw_every_detector_with_position_dashed():
    from ganet_lib.detector import DETECTORS

    curves = {name: {"fpr": np.array([0.0, 0.5, 1.0]), "tpr": np.array([0.0, 0.7, 1.0]), "auc": 0.6} for name in DETECTORS}
    fig = viz.plot_detector_rocs(curves, DETECTORS)
    lines = [line for line in fig.axes[0].get_lines() if line.get_label() and not line.get_label().startswith("_")]
    assert len(lines) == len(DETECTORS)  # a list of colours once cut the covariates off
    dashed = {line.get_label().split(":")[0] for line in lines if line.get_linestyle() == "--"}
    assert dashed == {DETECTORS["brain_area"], DETECTORS["centre_closeness"]}
