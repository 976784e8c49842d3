"""The evaluation figures."""

import numpy as np

from ganet_lib import viz


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
