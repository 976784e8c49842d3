"""Loss functions, one plain function each, with their input contract (paper Appendix A).

GAN pre-training (paper 4.1.1, Eqs. 1-2). All discriminator outputs are *logits*; the sigmoid
lives inside `binary_cross_entropy_with_logits`, which is the numerically stable form of
-log D and -log(1 - D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patch_targets(mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Which discriminator patches see generated pixels: the hole mask max-pooled to the patch map.

    Args:
        mask: (B, 1, H, W), 1 in the hole. logits: (B, 1, h, w), only its size is used.

    Returns:
        (B, 1, h, w) in {0, 1}: 1 where a patch overlaps the hole.
    """
    return F.adaptive_max_pool2d(mask, logits.shape[-2:])


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, fake_patches: torch.Tensor) -> torch.Tensor:
    """Eq. (1): L_D = -E[log D(x)] - E[log(1 - D(G(z)))], averaged over patches and batch.

    Deviation from the paper (whose Eq. (1) is per image): the fake images are real slices with
    a generated hole, so only the patches that overlap the hole (`fake_patches`) are fake; the
    others show real tissue and are scored as real. Labelling every patch of such a slice fake
    asks the discriminator to tell identical tissue apart, which it cannot (its loss then sits
    at 2 log 2 and its map carries no information).

    Args:
        real_logits, fake_logits: PatchGAN logits (B, 1, h, w) for real normal slices and for
            inpainted ones (the generator's output detached).
        fake_patches: (B, 1, h, w) in {0, 1}, from `patch_targets`.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))  # -log D(x)
    fake = F.binary_cross_entropy_with_logits(fake_logits, 1 - fake_patches)  # -log(1 - D(G(z))) on the hole's patches
    return real + fake


def generator_adversarial_loss(fake_logits: torch.Tensor, fake_patches: torch.Tensor) -> torch.Tensor:
    """Eq. (2): L_G = -E[log D(G(z))] (the non-saturating form), over the patches that overlap the
    hole (the only ones the generator changes); 0 if there is no hole."""
    per_patch = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits), reduction="none")
    return (per_patch * fake_patches).sum() / fake_patches.sum().clamp(min=1.0)


def hole_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error inside the hole: sum |prediction - target| * mask / sum mask.

    Args:
        prediction, target: (B, C, H, W) images on the same scale.
        mask: (B, 1, H, W), 1 in the hole, 0 elsewhere. An all-zero mask gives 0.
    """
    error = (prediction - target).abs() * mask
    return error.sum() / mask.sum().clamp(min=1.0)
