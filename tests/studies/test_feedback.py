"""The feedback analyses of notebook 04: degraded masks and the rising-L_adv rule."""

import numpy as np
import pytest
import torch


def confident_logits(classes: torch.Tensor) -> torch.Tensor:
    """(B, H, W) class indices -> logits whose softmax is one-hot to float precision."""
    return torch.nn.functional.one_hot(classes, 4).permute(0, 3, 1, 2).float() * 50


def test_degraded_masks_miss_one_side_or_grow_into_tissue():
    from ganet_lib.studies.feedback import degrade_mask

    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True  # 100 pixels
    missed = degrade_mask(mask, 0.5, "miss", np.array([0.0, 1.0]))  # drop the half furthest to the right
    assert missed.sum() == 50 and missed[5:15, 5:10].all() and not missed[:, 10:].any()
    grown = degrade_mask(mask, 0.2, "over", np.array([0.0, 1.0]))
    assert grown.sum() == 120 and (grown & mask).sum() == 100
    added = grown & ~mask
    assert added[4, 5:15].any() and not added[0].any()  # the nearest ring first, nothing far away
    assert (degrade_mask(mask, 0.0, "miss", np.array([1.0, 0.0])) == mask).all()


def test_feedback_rises_needs_a_positive_slope_and_a_higher_end():
    from ganet_lib.studies.feedback import feedback_rises

    def rows(values):
        return [{"mode": "miss", "fraction": 0.1 * k, "l_adv": v} for k, v in enumerate(values)] + [
            {"mode": "over", "fraction": 0.0, "l_adv": 9.0}
        ]

    slope, rises = feedback_rises(
        rows([0.240965, 0.243251, 0.251135, 0.255149, 0.254830, 0.254526])
    )  # the default profile's curve (2026-11-26)
    assert rises and slope == pytest.approx(0.0304, abs=1e-3)
    assert not feedback_rises(rows([0.25, 0.24, 0.23, 0.22]))[1]  # falling
    slope, rises = feedback_rises(rows([0.20, 0.40, 0.45, 0.199]))
    assert slope > 0 and not rises  # a positive slope, but it ends below its start
