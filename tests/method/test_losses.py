import math

import pytest
import torch

from ganet_lib.config import GanConfig, ModelConfig
from ganet_lib.method.losses import (
    adversarial_feedback_loss,
    dice_loss,
    discriminator_loss,
    edge_map,
    generator_adversarial_loss,
    hole_l1,
    patch_targets,
    segmentation_loss,
    size_loss,
    sparsity_loss,
    tumour_mask,
)
from ganet_lib.method.models import InpaintingGenerator, PatchDiscriminator, SegmentationUNet


def confident_logits(classes: torch.Tensor) -> torch.Tensor:
    """(B, H, W) class indices -> logits whose softmax is one-hot to float precision."""
    return torch.nn.functional.one_hot(classes, 4).permute(0, 3, 1, 2).float() * 50


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
    loss, extras = adversarial_feedback_loss(
        images[:, :1], tumour_mask(unet(images)), generator_net, discriminator, torch.randn(2, 1, 32, 32)
    )
    loss.backward()
    unet_grads = [p.grad for p in unet.parameters()]
    assert all(g is not None for g in unet_grads) and sum(g.abs().sum() for g in unet_grads) > 0
    assert all(p.grad is None for p in (*generator_net.parameters(), *discriminator.parameters()))
    assert extras["d_map"].shape == (2, 1, 2, 2) and extras["inpainted"].shape == (2, 1, 32, 32)


MODEL = ModelConfig(gen_channels=(4, 8, 16), disc_channels=4)
GAN = GanConfig(epochs=3, batch_size=8, patience=100, seed=3)


def test_gan_losses_by_hand():
    zeros = torch.zeros(2, 1, 3, 3)
    all_fake = torch.ones(2, 1, 3, 3)
    # D outputs 0.5 everywhere: -log 0.5 for real patches plus -log 0.5 for fake ones.
    assert discriminator_loss(zeros, zeros, all_fake).item() == pytest.approx(2 * math.log(2))
    assert generator_adversarial_loss(zeros, all_fake).item() == pytest.approx(math.log(2))
    assert generator_adversarial_loss(zeros, torch.zeros_like(zeros)).item() == 0.0
    prediction = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    assert hole_l1(prediction, torch.zeros_like(prediction), mask).item() == pytest.approx((1 + 4) / 2)


def test_patch_targets_mark_patches_over_the_hole():
    mask = torch.zeros(1, 1, 8, 8)
    mask[0, 0, 0, 0] = 1  # one pixel in the top-left corner
    targets = patch_targets(mask, torch.zeros(1, 1, 2, 2))
    assert targets.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
