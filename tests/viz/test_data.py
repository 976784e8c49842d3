import matplotlib.colors
import numpy as np
from matplotlib.figure import Figure

from ganet_lib import viz
from ganet_lib.method.enhance import enhancement_steps


def test_render_enhancement_is_what_the_slider_draws(case):
    image, _, z = case
    fig = viz.render_enhancement(enhancement_steps(image[1][:, :, z].T, -0.8), -0.8)
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
