"""What the adversarial feedback sees and responds to (notebook 04): does L_adv of Eq. (7) rise
when the mask misses tumour? The mechanism the paper relies on, tested on the trained networks.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ganet_lib.data.cases import display_modality
from ganet_lib.method.losses import adversarial_feedback_loss, tumour_mask
from ganet_lib.method.seg_data import SegSlices


@torch.no_grad()
def feedback_views(
    model: torch.nn.Module, gan_nets: tuple, dataset: SegSlices, indices: list[int], seed: int = 0
) -> dict[str, np.ndarray]:
    """What the adversarial feedback sees for some slices, for figures.

    Returns:
        {"image": FLAIR or the display channel (N, H, W), "truth": labels (N, H, W), "prediction":
         labels (N, H, W), "mask": M (N, H, W), "edges": (N, h, w), "inpainted": T1 (N, H, W), "d_map": (N, h, w)}
    """
    model.eval()
    images, target, t1 = (torch.stack(items) for items in zip(*(dataset[i] for i in indices)))
    logits = model(images)
    mask = tumour_mask(logits)
    noise = torch.randn(t1.shape, generator=torch.Generator().manual_seed(seed))
    _, extras = adversarial_feedback_loss(t1, mask, *gan_nets, noise)
    return {
        "image": images[:, dataset.cache.channels.index(display_modality(dataset.cache.channels))].numpy(),
        "truth": dataset.scheme.classes_to_labels(target.numpy()),
        "prediction": dataset.scheme.classes_to_labels(logits.argmax(dim=1).numpy()),
        "mask": mask[:, 0].numpy(),
        "edges": extras["edges"][:, 0].numpy(),
        "inpainted": extras["inpainted"][:, 0].numpy(),
        "d_map": extras["d_map"][:, 0].numpy(),
        "scheme": dataset.scheme,  # how to colour the labels
    }


def degrade_mask(mask: np.ndarray, fraction: float, mode: str, direction: np.ndarray) -> np.ndarray:
    """A (H, W) bool tumour mask with `fraction` of its area missed or added.

    `miss`: the part of the tumour furthest along `direction` (a unit 2-vector) is dropped, as a
    segmentation that stops short of one side; `over`: the mask grows into the tissue around it,
    nearest pixels first, by `fraction` of its area.
    """
    area = int(mask.sum())
    count = int(round(fraction * area))
    if count == 0 or area == 0:
        return mask.copy()
    if mode == "miss":
        rows, cols = np.nonzero(mask)
        order = np.argsort(rows * direction[0] + cols * direction[1])[::-1]  # furthest along `direction` first
        out = mask.copy()
        out[rows[order[:count]], cols[order[:count]]] = False
        return out
    if mode == "over":
        distance = ndimage.distance_transform_edt(~mask)
        outside = np.flatnonzero(~mask.ravel())
        nearest = outside[np.argsort(distance.ravel()[outside], kind="stable")[:count]]
        out = mask.copy().ravel()
        out[nearest] = True
        return out.reshape(mask.shape)
    raise ValueError(f"mode must be miss or over, got {mode!r}")


@torch.no_grad()
def feedback_response(
    gan_nets: tuple,
    dataset: SegSlices,
    fractions: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    modes: tuple[str, ...] = ("miss", "over"),
    seed: int = 0,
    batch_size: int = 64,
) -> list[dict]:
    """L_adv (Eq. 7, the frozen G and D) of the true tumour masks, degraded step by step.

    For every slice of `dataset` with tumour, the true whole-tumour mask is degraded (`degrade_mask`:
    a part missed, or grown into normal tissue) and scored as the U-Net's mask would be. The mechanism
    works if L_adv rises with the missed fraction. The same noise and the same direction per slice
    for every fraction, so the curve shows the masks' effect only.

    Returns:
        one row per mode and fraction: mode, fraction, l_adv (mean over slices), slices.
    """
    generator_net, discriminator = gan_nets
    picks = [i for i in range(len(dataset)) if bool((dataset[i][1] > 0).any())]
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, len(picks))
    rows = []
    for mode in modes:
        for fraction in fractions:
            losses = []
            for start in range(0, len(picks), batch_size):
                chunk = picks[start : start + batch_size]
                t1 = torch.stack([dataset[i][2] for i in chunk])  # (b, 1, H, W)
                masks = np.stack(
                    [
                        degrade_mask(dataset[i][1].numpy() > 0, fraction, mode, np.array([np.sin(a), np.cos(a)]))
                        for i, a in zip(chunk, angles[start : start + batch_size])
                    ]
                )[:, None].astype(np.float32)  # (b, 1, H, W)
                noise = torch.randn(t1.shape, generator=torch.Generator().manual_seed(seed + start))
                loss, _ = adversarial_feedback_loss(
                    t1,
                    torch.from_numpy(masks),
                    generator_net=generator_net,
                    discriminator=discriminator,
                    noise=noise,
                    per_slice=True,
                )
                losses.append(loss)
            rows.append(
                {"mode": mode, "fraction": fraction, "l_adv": float(torch.cat(losses).mean()), "slices": len(picks)}
            )
    return rows


def feedback_rises(rows: list[dict]) -> tuple[float, bool]:
    """Whether L_adv rises with the missed fraction in `feedback_response` rows: the least-squares
    slope of L_adv against the fraction (per unit fraction), and "rises" = a positive slope and
    L_adv at the largest fraction above L_adv at 0."""
    missed = sorted((r for r in rows if r["mode"] == "miss"), key=lambda r: r["fraction"])
    fractions, values = np.array([r["fraction"] for r in missed]), np.array([r["l_adv"] for r in missed])
    slope = float(np.polyfit(fractions, values, 1)[0])
    return slope, bool(slope > 0 and values[-1] > values[0])
