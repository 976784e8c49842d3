"""The discriminator as a detector, and the baselines beside it (`ganet_lib.studies.detector`)."""

from __future__ import annotations

import numpy as np
import torch

from ganet_lib.studies.detector import detector_table, inpainting_residual


class FillsBlack(torch.nn.Module):
    """A 'generator' that paints every hole black (-1 on its [-1, 1] scale, 0 on [0, 1])."""

    def forward(self, masked, mask, noise):
        return -torch.ones_like(masked)


def test_every_brain_pixel_is_inpainted_exactly_once():
    images = torch.zeros(2, 1, 40, 36)
    images[0, 0, 5:30, 4:33] = torch.rand(25, 29) * 0.8 + 0.1  # a brain
    images[1, 0, 10:20, 10:20] = 0.5
    scores = inpainting_residual(FillsBlack(), images, patch_fraction=0.15)
    # With black fills the residual of a pixel is its own value; each counted once: the mean brain intensity.
    expected = [images[k][images[k] > 0].mean().item() for k in range(2)]
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-5)
    assert inpainting_residual(FillsBlack(), torch.zeros(1, 1, 32, 32)).item() == 0.0  # no brain: 0


def test_detector_table_orients_every_score_towards_tumour():
    positive = np.array([True, True, False, False, False])
    rows = [
        {"positive": bool(p), "d_mean": -0.9 + 0.1 * p, "t1_mean": 0.3 * p, "flair_mean": 0.5 - 0.1 * p}
        for p in positive
    ]
    table = {row["detector"]: row for row in detector_table(rows, None, None)}
    assert table["d_mean"]["AUC full size"] == 1.0 and table["t1_mean"]["AUC full size"] == 1.0
    assert table["flair_mean"]["AUC full size"] == 0.0  # scores as given: here FLAIR is lower on tumour slices
    assert np.isnan(table["residual"]["AUC full size"]) and np.isnan(table["d_mean"]["AUC as trained"])
