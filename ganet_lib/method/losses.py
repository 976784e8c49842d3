"""Loss functions, one plain function each, with their input contract (paper Appendix A).

GAN pre-training (paper 4.1.1, Eqs. 1-2). All discriminator outputs are *logits*; the sigmoid
lives inside `binary_cross_entropy_with_logits`, which is the numerically stable form of
-log D and -log(1 - D).
"""

from __future__ import annotations

from collections.abc import Callable

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


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, fake_patches: torch.Tensor
) -> torch.Tensor:
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


# ---------------------------------------------------------------------------------------------
# Segmentation (paper 4.1.3 and Appendix A, Eqs. 3-12). The U-Net gives logits (B, 4, H, W) over
# the classes background, NCR/NET, ED, ET; targets are class indices (B, H, W) in 0..3 (BraTS
# label 4 is class 3, see `data.labels_to_classes`).
# ---------------------------------------------------------------------------------------------

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])  # Eq. (12) stencil


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Eq. (4): 1 - 2|P n T| / (|P| + |T|), soft, per tumour class (1..3), averaged over classes.

    Sums run over the whole batch, so a class absent from one slice does not give that slice a
    0/0. `eps` (1 pixel) keeps a class absent from the whole batch and from the prediction at a
    loss near 0. Background is left out: it would dominate and make the loss near 0 anyway.

    Args:
        logits: (B, C, H, W) raw scores. target: (B, H, W) class indices.
    """
    probabilities = logits.softmax(dim=1)[:, 1:]  # (B, C-1, H, W)
    one_hot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(probabilities.dtype)
    intersection = (probabilities * one_hot).sum(dim=(0, 2, 3))  # (C-1,)
    sizes = probabilities.sum(dim=(0, 2, 3)) + one_hot.sum(dim=(0, 2, 3))
    return (1 - (2 * intersection + eps) / (sizes + eps)).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, dice: Callable = dice_loss) -> torch.Tensor:
    """L_seg = cross-entropy (Eq. 3, multi-class form, mean over pixels) + Dice (Eq. 4).

    Args:
        logits: (B, C, H, W) raw scores. target: (B, H, W) class indices.
        dice: the soft Dice loss, `dice_loss` or a student's in its signature (exercise 04.4).
    """
    return F.cross_entropy(logits, target) + dice(logits, target)


def tumour_mask(logits: torch.Tensor) -> torch.Tensor:
    """The soft tumour mask M = 1 - p(background), (B, 1, H, W): differentiable in the logits."""
    return 1 - logits.softmax(dim=1)[:, :1]


def sparsity_loss(mask: torch.Tensor) -> torch.Tensor:
    """Eq. (5) without its alpha: ||M||_1 normalised by the number of pixels (mean of M)."""
    return mask.mean()


def size_loss(mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (6) without its gamma: |(sum M - S) / S| per slice, S the true tumour pixel count.

    Slices with S = 0 (no tumour) are left out, since the ratio is undefined there; if no slice of
    the batch has tumour the loss is 0.

    Args:
        mask: (B, 1, H, W) soft tumour mask. target: (B, H, W) class indices.
    """
    true_size = (target > 0).sum(dim=(1, 2)).to(mask.dtype)  # (B,)
    predicted = mask.sum(dim=(1, 2, 3))  # (B,)
    has_tumour = true_size > 0
    if not has_tumour.any():
        return mask.sum() * 0.0  # keeps the graph (and the device) of `mask`
    return ((predicted[has_tumour] - true_size[has_tumour]) / true_size[has_tumour]).abs().mean()


def edge_map(mask: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
    """Eqs. (11)-(12): the mask's boundary, pooled to the discriminator's patch map.

    (11) M_exp = 5x5 max-pool of M with stride 1 (a dilation); (12) E = |Laplacian(M_exp)| with
    the stencil 0 1 0 / 1 -4 1 / 0 1 0; then averaged over each patch's area to `output_size`.

    Args:
        mask: (B, 1, H, W) in [0, 1].

    Returns:
        (B, 1, h, w) non-negative edge weights.
    """
    expanded = F.max_pool2d(mask, kernel_size=5, stride=1, padding=2)  # (11): (B, 1, H, W)
    stencil = LAPLACIAN.to(mask).view(1, 1, 3, 3)
    edges = F.conv2d(F.pad(expanded, (1, 1, 1, 1), mode="replicate"), stencil).abs()  # (12): (B, 1, H, W)
    return F.adaptive_avg_pool2d(edges, output_size)  # (B, 1, h, w)


def edge_weighted_adversarial(logits: torch.Tensor, edges: torch.Tensor, per_slice: bool = False) -> torch.Tensor:
    """Eq. (7)'s weighted sum: L_adv = sum(E * -log D) / sum(E) over the patches (of the batch, or per slice).

    Args:
        logits: (B, 1, h, w) discriminator logits of the inpainted slices; -log D = -log sigmoid(logits).
        edges: (B, 1, h, w) non-negative weights from `edge_map`. Without any edge the loss is 0.
    """
    per_patch = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")  # -log D, stable
    if per_slice:
        return (edges * per_patch).sum(dim=(1, 2, 3)) / edges.sum(dim=(1, 2, 3)).clamp(min=1e-6)
    return (edges * per_patch).sum() / edges.sum().clamp(min=1e-6)


def adversarial_feedback_loss(
    t1: torch.Tensor,
    mask: torch.Tensor,
    generator_net: torch.nn.Module,
    discriminator: torch.nn.Module,
    noise: torch.Tensor,
    per_slice: bool = False,
    edges_of: Callable | None = None,
    weighted: Callable | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. (7): cut the predicted tumour out of T1, let the frozen generator inpaint it, and score
    the result with the frozen discriminator, patch by patch, weighted by the mask's edges.

    If the mask missed tumour, the tumour left around the hole cannot be made to look normal, and
    the discriminator's patches along the boundary say so. Gradients reach the U-Net through M
    (in the occlusion, the paste and the edge weights); the GAN networks must have
    `requires_grad=False` and are never updated.

    Args:
        t1: (B, 1, H, W) T1 in [0, 1], pre-processed as the GAN's input.
        mask: (B, 1, H, W) soft tumour mask M from the U-Net.
        generator_net, discriminator: the pre-trained, frozen GAN.
        noise: (B, 1, H, W) standard Gaussian noise.
        per_slice: return one loss per slice, (B,), instead of the batch's (for measurements).
        edges_of, weighted: Eqs. (11)-(12) and Eq. (7)'s weighted sum: `edge_map` and
            `edge_weighted_adversarial` unless a student's are given (exercises 04.1, 04.2).

    Returns:
        the loss (scalar, or (B,) with `per_slice`) and, for figures, {"inpainted": (B, 1, H, W) in [0, 1],
        "d_map": (B, 1, h, w) probabilities, "edges": (B, 1, h, w)}.
    """
    x = t1 * 2 - 1  # [0, 1] -> [-1, 1]
    occluded = x * (1 - mask)
    fake = generator_net(occluded, mask, noise * mask)
    composite = occluded + fake * mask  # (B, 1, H, W)
    logits = discriminator(composite)  # (B, 1, h, w)
    if per_slice and weighted is not None:
        raise ValueError("per_slice needs the kit's edge_weighted_adversarial (a student's returns the batch's loss)")
    edges = (edges_of or edge_map)(mask, logits.shape[-2:])
    loss = edge_weighted_adversarial(logits, edges, per_slice) if weighted is None else weighted(logits, edges)
    return loss, {
        "inpainted": (composite.detach() + 1) / 2,
        "d_map": torch.sigmoid(logits.detach()),
        "edges": edges.detach(),
    }
