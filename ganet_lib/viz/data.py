"""Figures of notebooks 01-02: the data, the regions, the brain box, the enhancement, the slice cache."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ganet_lib.data.cases import MODALITIES, axial_slices, display_modality
from ganet_lib.data.labels import BRATS, LabelScheme
from ganet_lib.viz.common import MODALITY_TITLES, _bare, label_legend, overlay_labels


def plot_modalities(
    image: np.ndarray,
    label: np.ndarray | None,
    z: int,
    title: str = "",
    modalities: tuple[str, ...] = MODALITIES,
    scheme: LabelScheme = BRATS,
) -> Figure:
    """The modalities of axial slice `z`, and FLAIR (or the display modality) with the label overlay.

    Args:
        image: (C, X, Y, Z), channels `modalities`; label: (X, Y, Z) in `scheme`'s labels, or None.
    """
    panels = len(modalities) + (label is not None)
    fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 2.9), squeeze=False)
    axes = axes[0]
    for ax, channel, name in zip(axes, image, modalities):
        ax.imshow(axial_slices(channel)[z], cmap="gray")
        _bare(ax, MODALITY_TITLES[name])
    if label is not None:
        shown = display_modality(modalities)
        axes[-1].imshow(axial_slices(image[modalities.index(shown)])[z], cmap="gray")
        overlay_labels(axes[-1], axial_slices(label)[z], scheme=scheme)
        label_legend(axes[-1], scheme)
        _bare(axes[-1], f"{MODALITY_TITLES[shown]} + labels")
    fig.suptitle(title or f"axial slice z = {z}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_regions(
    image: np.ndarray, label: np.ndarray, z: int, modalities: tuple[str, ...] = MODALITIES, scheme: LabelScheme = BRATS
) -> Figure:
    """The evaluation regions of the scheme (WT, TC, ET; WT only for whole-tumour masks) of slice `z`
    over T1ce (or the display modality)."""
    shown = "t1ce" if "t1ce" in modalities else display_modality(modalities)
    background = axial_slices(image[modalities.index(shown)])[z]
    fig, axes = plt.subplots(1, len(scheme.regions), figsize=(2.7 * len(scheme.regions), 2.9), squeeze=False)
    for ax, region in zip(axes[0], scheme.regions):
        ax.imshow(background, cmap="gray")
        mask = axial_slices(scheme.region_mask(label, region))[z]
        ax.imshow(
            np.ma.masked_where(~mask, mask), cmap=ListedColormap(["#377eb8"]), alpha=0.55, interpolation="nearest"
        )
        labels = "+".join(str(v) for v in scheme.regions[region])
        _bare(ax, f"{region} = labels {labels}")
    fig.tight_layout()
    return fig


def plot_volume_distribution(rows: list[dict]) -> Figure:
    """Box plots of tumour volume per label and region over subjects (rows from `case_statistics`)."""
    keys = [
        k for k in ("ml_NCR", "ml_ED", "ml_ET", "ml_WT", "ml_TC") if rows and rows[0][k] is not None
    ]  # whole-tumour masks: WT only
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.boxplot([[r[k] for r in rows] for k in keys], tick_labels=[k[3:] for k in keys])
    ax.set_ylabel("volume per subject (ml)")
    ax.set_title(f"tumour volumes over {len(rows)} subjects", fontsize=10)
    fig.tight_layout()
    return fig


def plot_empty_slices(rows: list[dict]) -> Figure:
    """Per subject: brain slices with and without tumour (the paper's Appendix E point)."""
    fig, ax = plt.subplots(figsize=(max(5, 0.25 * len(rows)), 3))
    x = np.arange(len(rows))
    tumour = np.array([r["tumour_slices"] for r in rows])
    empty = np.array([r["empty_slices"] for r in rows])
    ax.bar(x, tumour, color="#e41a1c", label="slices with tumour")
    ax.bar(x, empty, bottom=tumour, color="#bbbbbb", label="brain slices, empty label map")
    ax.set_xticks(x, [r["case_id"].split("_")[-1] for r in rows], rotation=90, fontsize=6)
    ax.set_ylabel("axial slices")
    share = empty.sum() / max(1, (empty + tumour).sum())
    ax.set_title(f"{share:.0%} of brain slices have an empty label map", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_brain_box(slice2d: np.ndarray, box: tuple[int, int, int, int], cropped: np.ndarray) -> Figure:
    """A slice with its square brain box, and the cropped, resized network input."""
    row0, row1, col0, col1 = box
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    axes[0].imshow(slice2d, cmap="gray")
    axes[0].add_patch(
        Rectangle((col0 - 0.5, row0 - 0.5), col1 - col0, row1 - row0, fill=False, edgecolor="#377eb8", linewidth=1.5)
    )
    _bare(axes[0], f"slice {slice2d.shape[0]} x {slice2d.shape[1]} and its brain box")
    axes[1].imshow(cropped, cmap="gray")
    _bare(axes[1], f"network input {cropped.shape[0]} x {cropped.shape[1]}")
    fig.tight_layout()
    return fig


def plot_enhancement_steps(steps: dict[str, np.ndarray], lam: float) -> Figure:
    """I, IMG1 ... IMG5 of Eqs. (13)-(17) for one slice (`enhance.enhancement_steps`), each with its
    own colour scale."""
    captions = {
        "I": "I: min-max scaled",
        "IMG1": "(13) log brightening",
        "IMG2": "(14) 1 - exp(-I)",
        "IMG3": "(15) combined",
        "IMG4": "(16) erf / arctan",
        "IMG5": "(17) rescaled",
    }
    fig, axes = plt.subplots(1, len(steps), figsize=(2.3 * len(steps), 2.8))
    for ax, (name, array) in zip(axes, steps.items()):
        shown = ax.imshow(array, cmap="gray")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
        _bare(ax, captions[name])
    fig.suptitle(f"enhancement, lambda = {lam:g}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_transfer_curves(curves: dict[float, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Output against input intensity of the whole enhancement: {lambda: (input ramp, output)}
    for several lambdas (`enhance.transfer_curve`)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for lam, (ramp, curve) in curves.items():
        ax.plot(ramp, curve, label=f"lambda = {lam:g}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="identity")
    ax.set_xlabel("input I (min-max scaled)")
    ax.set_ylabel("enhanced IMG5")
    ax.legend(fontsize=7)
    ax.set_title("transfer curve of Eqs. (13)-(17)", fontsize=10)
    fig.tight_layout()
    return fig


def render_enhancement(steps: dict[str, np.ndarray], lam: float) -> Figure:
    """Before / after / histogram of one slice's enhancement (`enhance.enhancement_steps`): what the
    lambda slider of notebook 02 draws."""
    before, after = steps["I"], steps["IMG5"]
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.9))
    axes[0].imshow(before, cmap="gray", vmin=0, vmax=1)
    _bare(axes[0], "before (min-max scaled)")
    axes[1].imshow(after, cmap="gray", vmin=0, vmax=1)
    _bare(axes[1], f"after, lambda = {lam:g}")
    inside = before > 0
    axes[2].hist(
        [before[inside], after[inside]], bins=40, range=(0, 1), label=["before", "after"], color=["#999999", "#377eb8"]
    )
    axes[2].set_title("brain intensities", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_cache_samples(
    images: np.ndarray,
    labels: np.ndarray,
    count: int = 4,
    channels: tuple[str, ...] = MODALITIES,
    scheme: LabelScheme = BRATS,
) -> Figure:
    """Network inputs from the slice cache: every channel and the label of `count` slices.

    Args:
        images: (S, C, H, W), channels `channels`; labels: (S, H, W); `count` slices spread evenly over S are shown.
    """
    picks = np.linspace(0, len(images) - 1, min(count, len(images))).astype(int)
    fig, axes = plt.subplots(
        len(picks), len(channels) + 1, figsize=(2.0 * (len(channels) + 1), 2.0 * len(picks)), squeeze=False
    )
    for row, index in zip(axes, picks):
        for ax, channel, name in zip(row, images[index], channels):
            ax.imshow(channel, cmap="gray", vmin=0, vmax=1)
            _bare(ax, MODALITY_TITLES[name])
        row[-1].imshow(images[index][channels.index(display_modality(channels))], cmap="gray", vmin=0, vmax=1)
        overlay_labels(row[-1], labels[index], scheme=scheme)
        _bare(row[-1], "label")
    fig.tight_layout()
    return fig


def plot_nfbs_orientation(stored: np.ndarray, reoriented: np.ndarray, brats_t1: np.ndarray) -> Figure:
    """Middle slices: an NFBS array as stored, the same volume in BraTS's axes, and a BraTS T1.

    Args:
        stored: the NFBS volume as its file holds it; reoriented: after `data.load_nfbs`;
        brats_t1: a BraTS T1 volume. All (X, Y, Z).
    """
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    axes[0].imshow(stored[:, :, stored.shape[2] // 2].T, cmap="gray")
    _bare(axes[0], "NFBS array, middle of its last axis")
    axes[1].imshow(axial_slices(reoriented)[reoriented.shape[2] // 2], cmap="gray")
    _bare(axes[1], "NFBS reoriented: axial")
    axes[2].imshow(axial_slices(brats_t1)[brats_t1.shape[2] // 2], cmap="gray")
    _bare(axes[2], "BraTS T1: axial")
    fig.tight_layout()
    return fig
