"""Saving figures."""

from ganet_lib import viz


def test_save_figure_writes_a_png(case, tmp_path):
    fig = viz.plot_regions(case[0], case[1], case[2])
    path = viz.save_figure(fig, tmp_path / "sub" / "regions.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["regions.png"]  # no temporary file left
