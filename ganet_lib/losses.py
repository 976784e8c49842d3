"""Loss functions, one plain function each, with their input contract (paper Appendix A).

GAN pre-training (paper 4.1.1, Eqs. 1-2). All discriminator outputs are *logits*; the sigmoid
lives inside `binary_cross_entropy_with_logits`, which is the numerically stable form of
-log D and -log(1 - D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. (1): L_D = -E[log D(x)] - E[log(1 - D(G(z)))], averaged over patches and batch.

    Args:
        real_logits, fake_logits: PatchGAN logits (B, 1, h, w) for real normal slices and for
            inpainted ones (the generator's output detached).
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))  # -log D(x)
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))  # -log(1 - D(G(z)))
    return real + fake


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. (2): L_G = -E[log D(G(z))] (the non-saturating form), averaged over patches and batch."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def hole_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error inside the hole: sum |prediction - target| * mask / sum mask.

    Args:
        prediction, target: (B, C, H, W) images on the same scale.
        mask: (B, 1, H, W), 1 in the hole, 0 elsewhere. An all-zero mask gives 0.
    """
    error = (prediction - target).abs() * mask
    return error.sum() / mask.sum().clamp(min=1.0)
