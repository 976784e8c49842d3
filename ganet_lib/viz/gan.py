"""Figures of notebook 03: GAN training, inpainting, the discriminator's maps, where the normals lie."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ganet_lib.viz.common import _bare, overlay_labels


def plot_gan_history(history: list[dict]) -> Figure:
    """GAN pre-training curves: losses, hole L1 (train, validation, mean-fill baseline), PSNR."""
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    axes[0].plot(epochs, [r["d_loss"] for r in history], marker="o", label="D loss, Eq. (1)")
    axes[0].plot(epochs, [r["g_adv"] for r in history], marker="o", label="G adversarial, Eq. (2)")
    axes[0].set_title("adversarial losses", fontsize=9)
    axes[1].plot(epochs, [r["g_l1"] for r in history], marker="o", label="train")
    axes[1].plot(epochs, [r["val_hole_l1"] for r in history], marker="o", label="validation")
    axes[1].plot(
        epochs,
        [r["val_mean_fill_l1"] for r in history],
        linestyle="--",
        color="grey",
        label="fill with mean brain intensity",
    )
    axes[1].set_title("hole L1 (intensity in [0, 1])", fontsize=9)
    axes[2].plot(epochs, [r["val_psnr"] for r in history], marker="o", color="#4daf4a")
    axes[2].set_title("validation PSNR in the hole (dB)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_inpainting(images: np.ndarray, masks: np.ndarray, filled: np.ndarray) -> Figure:
    """Rows: slice, slice with its hole, inpainted, |error|. Arrays (N, H, W) in [0, 1]."""
    count = len(images)
    fig, axes = plt.subplots(4, count, figsize=(2.0 * count, 8.2), squeeze=False)
    for k in range(count):
        axes[0, k].imshow(images[k], cmap="gray", vmin=0, vmax=1)
        axes[1, k].imshow(np.where(masks[k] > 0, np.nan, images[k]), cmap="gray", vmin=0, vmax=1)
        axes[2, k].imshow(filled[k], cmap="gray", vmin=0, vmax=1)
        axes[3, k].imshow(np.abs(filled[k] - images[k]), cmap="magma", vmin=0, vmax=0.5)
    for ax, title in zip(axes[:, 0], ["normal slice", "with a hole", "inpainted", "|error|"]):
        ax.set_ylabel(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_discriminator_maps(
    images: list[np.ndarray], maps: list[np.ndarray], titles: list[str], labels: list[np.ndarray | None] | None = None
) -> Figure:
    """Each slice next to its discriminator map (probability of normal tissue per patch).

    Args:
        images: (H, W) slices in [0, 1]; maps: (h, w) in [0, 1]; labels: optional (H, W) 0/1/2/4.
    """
    labels = labels or [None] * len(images)
    fig, axes = plt.subplots(2, len(images), figsize=(3.0 * len(images), 6), squeeze=False)
    for k, (image, patch_map, title, label) in enumerate(zip(images, maps, titles, labels)):
        axes[0, k].imshow(image, cmap="gray", vmin=0, vmax=1)
        if label is not None:
            overlay_labels(axes[0, k], label, alpha=0.35)
        _bare(axes[0, k], title)
        shown = axes[1, k].imshow(patch_map, cmap="RdYlGn", vmin=0, vmax=1)
        _bare(axes[1, k], f"D map, mean {patch_map.mean():.3f}")
        fig.colorbar(shown, ax=axes[1, k], fraction=0.046, pad=0.02)
    fig.tight_layout()
    return fig


def plot_normal_positions(rows: list[dict]) -> Figure:
    """Where the GAN's normal slices lie in their subjects (rows of `detector.normal_slices`):
    a histogram of the relative slice position of the normal slices beside all brain slices."""
    position = np.array([r["relative_position"] for r in rows])
    normal = np.array([r["normal"] for r in rows])
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    bins = np.linspace(-0.55, 0.55, 23)
    ax.hist(position, bins=bins, color="#bbbbbb", label=f"all brain slices of these subjects ({len(position)})")
    ax.hist(
        position[normal], bins=bins, color="#4daf4a", alpha=0.8, label=f"the GAN's normal slices ({int(normal.sum())})"
    )
    ax.set_xlabel("slice position relative to the subject's brain centre (fraction of its brain slices)")
    ax.set_ylabel("slices")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
