import numpy as np
import pytest
import torch

from ganet_lib.losses import adversarial_feedback_loss, dice_loss, edge_map, segmentation_loss, size_loss, sparsity_loss, tumour_mask
from ganet_lib.metrics import dice, region_dice
from ganet_lib.models import InpaintingGenerator, PatchDiscriminator, SegmentationUNet


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


def test_dice_loss_perfect_and_disjoint():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2, :2] = 1
    target[0, 2:, 2:] = 3
    assert dice_loss(confident_logits(target), target).item() == pytest.approx(0.0, abs=1e-4)
    wrong = torch.zeros_like(target)
    wrong[0, :2, :2] = 3  # classes swapped
    wrong[0, 2:, 2:] = 1
    # classes 1 and 3: Dice (0 + 1) / (8 + 1) each; class 2 absent everywhere: (0 + 1) / (0 + 1) = 1
    expected = ((1 - 1 / 9) * 2 + 0) / 3
    assert dice_loss(confident_logits(wrong), target).item() == pytest.approx(expected, abs=1e-4)
    assert segmentation_loss(confident_logits(target), target).item() == pytest.approx(0.0, abs=1e-4)


def test_mask_sparsity_and_size_by_hand():
    mask = torch.zeros(2, 1, 10, 10)
    mask[0, 0, :3, :10] = 1  # 30 pixels
    target = torch.zeros(2, 10, 10, dtype=torch.long)
    target[0, :2, :10] = 2  # S = 20
    assert sparsity_loss(mask).item() == pytest.approx(30 / 200)
    assert size_loss(mask, target).item() == pytest.approx(abs(30 - 20) / 20)  # slice 2 has S = 0: left out
    assert size_loss(mask, torch.zeros_like(target)).item() == 0.0
    logits = confident_logits(target)
    assert torch.allclose(tumour_mask(logits)[:, 0], (target > 0).float(), atol=1e-6)


def test_edge_map_of_a_square():
    mask = torch.zeros(1, 1, 12, 12)
    mask[0, 0, 4:8, 4:8] = 1
    edges = edge_map(mask, (12, 12))[0, 0]  # no pooling: the |Laplacian| of the 5x5-dilated square [2:10, 2:10]
    assert edges[2, 2] == 2  # inner corner: 2 neighbours inside, -4 -> |-2|
    assert edges[2, 5] == 1  # inner edge: 3 inside, -4 -> |-1|
    assert edges[1, 5] == 1  # just outside an edge: one neighbour inside
    assert edges[1, 1] == 0  # diagonal to the corner: no neighbour inside
    assert edges[5, 5] == 0  # deep inside: flat
    assert edges.sum() == 4 * 2 + 24 * 1 + 32 * 1
    pooled = edge_map(mask, (3, 3))
    assert pooled.shape == (1, 1, 3, 3) and pooled.sum() == pytest.approx(64 / 16)


def test_adversarial_term_reaches_the_unet_and_not_the_gan():
    torch.manual_seed(0)
    unet = SegmentationUNet(channels=(4, 8))
    generator_net, discriminator = InpaintingGenerator(channels=(4, 8)), PatchDiscriminator(base_channels=4)
    for net in (generator_net, discriminator):
        net.requires_grad_(False)
    images = torch.rand(2, 4, 32, 32)
    loss, extras = adversarial_feedback_loss(images[:, :1], tumour_mask(unet(images)), generator_net, discriminator, torch.randn(2, 1, 32, 32))
    loss.backward()
    unet_grads = [p.grad for p in unet.parameters()]
    assert all(g is not None for g in unet_grads) and sum(g.abs().sum() for g in unet_grads) > 0
    assert all(p.grad is None for p in (*generator_net.parameters(), *discriminator.parameters()))
    assert extras["d_map"].shape == (2, 1, 2, 2) and extras["inpainted"].shape == (2, 1, 32, 32)


def test_degraded_masks_miss_one_side_or_grow_into_tissue():
    from ganet_lib.train_seg import degrade_mask

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
    from ganet_lib.train_seg import feedback_rises

    def rows(values):
        return [{"mode": "miss", "fraction": 0.1 * k, "l_adv": v} for k, v in enumerate(values)] + [{"mode": "over", "fraction": 0.0, "l_adv": 9.0}]

    slope, rises = feedback_rises(rows([0.240965, 0.243251, 0.251135, 0.255149, 0.254830, 0.254526]))  # the default profile's curve (2026-11-26)
    assert rises and slope == pytest.approx(0.0304, abs=1e-3)
    assert not feedback_rises(rows([0.25, 0.24, 0.23, 0.22]))[1]  # falling
    slope, rises = feedback_rises(rows([0.20, 0.40, 0.45, 0.199]))
    assert slope > 0 and not rises  # a positive slope, but it ends below its start
