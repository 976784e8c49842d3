"""Saving figures."""

import numpy as np
from PIL import Image

from ganet_lib import viz


def test_save_figure_writes_a_png(case, tmp_path):
    fig = viz.plot_regions(case[0], case[1], case[2])
    path = viz.save_figure(fig, tmp_path / "sub" / "regions.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["regions.png"]  # no temporary file left


def test_save_figure_writes_the_figures_title_into_the_png(tmp_path):
    fig = viz.plot_panels([("input", np.zeros((4, 4))), ("output", np.ones((4, 4)))], title="two steps")
    with Image.open(viz.save_figure(fig, tmp_path / "steps.png")) as image:
        assert image.text["Title"] == "two steps"
    untitled = viz.plot_panels([("input", np.zeros((4, 4))), ("output", np.ones((4, 4)))])
    with Image.open(viz.save_figure(untitled, tmp_path / "panels.png")) as image:
        assert image.text["Title"] == "input; output"  # the panels' titles when there is no suptitle
