"""Figures: plain functions, arrays and parameters in, a matplotlib Figure out.

The notebooks' widgets call these same functions, and tests call them directly, so what a slider
shows is what a test checked. Slices are 2D arrays in display orientation (see
`data.axial_slices`): ``imshow`` them as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from ganet_lib.data import MODALITIES, axial_slices, display_modality
from ganet_lib.enhance import enhancement_steps, transfer_curve
from ganet_lib.labels import BRATS, LabelScheme

# Colours of the labels in every overlay, per label scheme.
LABEL_COLOURS = {
    "brats": {1: ("NCR/NET (1)", "#e41a1c"), 2: ("edema (2)", "#4daf4a"), 4: ("enhancing (4)", "#ffd92f")},
    "whole-tumour": {1: ("tumour (1)", "#ff7f00")},
}
MODALITY_TITLES = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR"}


def save_figure(fig: Figure, path: Path | str, dpi: int = 110) -> Path:
    """Save `fig` as PNG through a temporary file and a rename (no half-written figures)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    fig.savefig(partial, dpi=dpi, bbox_inches="tight")
    os.replace(partial, path)
    return path


def overlay_labels(ax: plt.Axes, label: np.ndarray, alpha: float = 0.45, scheme: LabelScheme = BRATS) -> None:
    """Draw a label slice (the scheme's labels) over whatever `ax` shows; background stays transparent."""
    rgba = np.zeros(label.shape + (4,))
    for value, (_, colour) in LABEL_COLOURS[scheme.name].items():
        rgba[label == value] = (*plt.matplotlib.colors.to_rgb(colour), alpha)
    ax.imshow(rgba, interpolation="nearest")


def label_legend(ax: plt.Axes, scheme: LabelScheme = BRATS) -> None:
    handles = [Patch(color=colour, label=name) for name, colour in LABEL_COLOURS[scheme.name].values()]
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.7)


def _bare(ax: plt.Axes, title: str = "") -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def plot_modalities(image: np.ndarray, label: np.ndarray | None, z: int, title: str = "",
                    modalities: tuple[str, ...] = MODALITIES, scheme: LabelScheme = BRATS) -> Figure:
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


def plot_regions(image: np.ndarray, label: np.ndarray, z: int, modalities: tuple[str, ...] = MODALITIES, scheme: LabelScheme = BRATS) -> Figure:
    """The evaluation regions of the scheme (WT, TC, ET; WT only for whole-tumour masks) of slice `z` over T1ce (or the display modality)."""
    shown = "t1ce" if "t1ce" in modalities else display_modality(modalities)
    background = axial_slices(image[modalities.index(shown)])[z]
    fig, axes = plt.subplots(1, len(scheme.regions), figsize=(2.7 * len(scheme.regions), 2.9), squeeze=False)
    for ax, region in zip(axes[0], scheme.regions):
        ax.imshow(background, cmap="gray")
        mask = axial_slices(scheme.region_mask(label, region))[z]
        ax.imshow(np.ma.masked_where(~mask, mask), cmap=ListedColormap(["#377eb8"]), alpha=0.55, interpolation="nearest")
        labels = "+".join(str(v) for v in scheme.regions[region])
        _bare(ax, f"{region} = labels {labels}")
    fig.tight_layout()
    return fig


def plot_volume_distribution(rows: list[dict]) -> Figure:
    """Box plots of tumour volume per label and region over subjects (rows from `case_statistics`)."""
    keys = [k for k in ("ml_NCR", "ml_ED", "ml_ET", "ml_WT", "ml_TC") if rows and rows[0][k] is not None]  # whole-tumour masks: WT only
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
    axes[0].add_patch(Rectangle((col0 - 0.5, row0 - 0.5), col1 - col0, row1 - row0, fill=False, edgecolor="#377eb8", linewidth=1.5))
    _bare(axes[0], f"slice {slice2d.shape[0]} x {slice2d.shape[1]} and its brain box")
    axes[1].imshow(cropped, cmap="gray")
    _bare(axes[1], f"network input {cropped.shape[0]} x {cropped.shape[1]}")
    fig.tight_layout()
    return fig


def plot_enhancement_steps(slice2d: np.ndarray, lam: float) -> Figure:
    """I, IMG1 ... IMG5 of Eqs. (13)-(17) for one slice, each with its own colour scale."""
    steps = enhancement_steps(slice2d, lam)
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


def plot_transfer_curves(lambdas: list[float]) -> Figure:
    """Output against input intensity of the whole enhancement, for several lambdas."""
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for lam in lambdas:
        ramp, curve = transfer_curve(lam)
        ax.plot(ramp, curve, label=f"lambda = {lam:g}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="identity")
    ax.set_xlabel("input I (min-max scaled)")
    ax.set_ylabel("enhanced IMG5")
    ax.legend(fontsize=7)
    ax.set_title("transfer curve of Eqs. (13)-(17)", fontsize=10)
    fig.tight_layout()
    return fig


def render_enhancement(slice2d: np.ndarray, lam: float) -> Figure:
    """Before / after / histogram of one slice: what the lambda slider of notebook 02 draws."""
    steps = enhancement_steps(slice2d, lam)
    before, after = steps["I"], steps["IMG5"]
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.9))
    axes[0].imshow(before, cmap="gray", vmin=0, vmax=1)
    _bare(axes[0], "before (min-max scaled)")
    axes[1].imshow(after, cmap="gray", vmin=0, vmax=1)
    _bare(axes[1], f"after, lambda = {lam:g}")
    inside = before > 0
    axes[2].hist([before[inside], after[inside]], bins=40, range=(0, 1), label=["before", "after"], color=["#999999", "#377eb8"])
    axes[2].set_title("brain intensities", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_cache_samples(images: np.ndarray, labels: np.ndarray, count: int = 4, channels: tuple[str, ...] = MODALITIES, scheme: LabelScheme = BRATS) -> Figure:
    """Network inputs from the slice cache: every channel and the label of `count` slices.

    Args:
        images: (S, C, H, W), channels `channels`; labels: (S, H, W); `count` slices spread evenly over S are shown.
    """
    picks = np.linspace(0, len(images) - 1, min(count, len(images))).astype(int)
    fig, axes = plt.subplots(len(picks), len(channels) + 1, figsize=(2.0 * (len(channels) + 1), 2.0 * len(picks)), squeeze=False)
    for row, index in zip(axes, picks):
        for ax, channel, name in zip(row, images[index], channels):
            ax.imshow(channel, cmap="gray", vmin=0, vmax=1)
            _bare(ax, MODALITY_TITLES[name])
        row[-1].imshow(images[index][channels.index(display_modality(channels))], cmap="gray", vmin=0, vmax=1)
        overlay_labels(row[-1], labels[index], scheme=scheme)
        _bare(row[-1], "label")
    fig.tight_layout()
    return fig


def plot_gan_history(history: list[dict]) -> Figure:
    """GAN pre-training curves: losses, hole L1 (train, validation, mean-fill baseline), PSNR."""
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    axes[0].plot(epochs, [r["d_loss"] for r in history], marker="o", label="D loss, Eq. (1)")
    axes[0].plot(epochs, [r["g_adv"] for r in history], marker="o", label="G adversarial, Eq. (2)")
    axes[0].set_title("adversarial losses", fontsize=9)
    axes[1].plot(epochs, [r["g_l1"] for r in history], marker="o", label="train")
    axes[1].plot(epochs, [r["val_hole_l1"] for r in history], marker="o", label="validation")
    axes[1].plot(epochs, [r["val_mean_fill_l1"] for r in history], linestyle="--", color="grey", label="fill with mean brain intensity")
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


def plot_discriminator_maps(images: list[np.ndarray], maps: list[np.ndarray], titles: list[str], labels: list[np.ndarray | None] | None = None) -> Figure:
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


def plot_seg_history(histories: dict[str, list[dict]]) -> Figure:
    """Per variant: every loss term, the dynamic weights of Eq. (10), and validation Dice per region."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    styles = {"ganet": "-", "unet": "--"}
    for variant, history in histories.items():
        epochs = [row["epoch"] for row in history]
        style = styles.get(variant, "-")
        for term, colour in zip(("seg", "sparsity", "adv", "size"), ("#377eb8", "#4daf4a", "#e41a1c", "#984ea3")):
            values = [row[f"loss_{term}"] for row in history]
            if not all(np.isnan(values)):
                axes[0].plot(epochs, values, style, color=colour, label=f"{variant}: L_{term}")
                weights = [row[f"weight_{term}"] for row in history]
                axes[1].plot(epochs, weights, style, color=colour, marker=".", label=f"{variant}: lambda_{term}")
        for region, colour in zip(("WT", "TC", "ET"), ("#377eb8", "#ff7f00", "#ffd92f")):
            if history and f"val_dice_{region}" not in history[0]:
                continue  # whole-tumour masks: WT only
            axes[2].plot(epochs, [row[f"val_dice_{region}"] for row in history], style, color=colour, label=f"{variant}: {region}")
    axes[0].set_title("loss terms (per epoch mean)", fontsize=9)
    axes[0].set_yscale("log")
    axes[1].set_title("dynamic weights, Eq. (10) (lambda_seg = 1)", fontsize=9)
    axes[1].set_yscale("log")
    axes[2].set_title("validation Dice (slices)", fontsize=9)
    axes[2].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_feedback_views(views: dict[str, np.ndarray]) -> Figure:
    """Rows of slices: FLAIR, truth, U-Net prediction, mask M with its edge map, inpainted T1, D map."""
    count = len(views["image"])
    columns = ["FLAIR", "truth", "U-Net", "edge map of M", "T1 inpainted under M", "D map"]
    fig, axes = plt.subplots(count, len(columns), figsize=(2.2 * len(columns), 2.3 * count), squeeze=False)
    for k in range(count):
        row = axes[k]
        row[0].imshow(views["image"][k], cmap="gray", vmin=0, vmax=1)
        row[1].imshow(views["image"][k], cmap="gray", vmin=0, vmax=1)
        scheme = views.get("scheme", BRATS)
        overlay_labels(row[1], views["truth"][k], scheme=scheme)
        row[2].imshow(views["image"][k], cmap="gray", vmin=0, vmax=1)
        overlay_labels(row[2], views["prediction"][k], scheme=scheme)
        row[3].imshow(views["edges"][k], cmap="magma")
        row[4].imshow(views["inpainted"][k], cmap="gray", vmin=0, vmax=1)
        row[5].imshow(views["d_map"][k], cmap="RdYlGn", vmin=0, vmax=1)
        for ax, title in zip(row, columns):
            _bare(ax, title if k == 0 else "")
    fig.tight_layout()
    return fig


def plot_architecture() -> Figure:
    """A diagram of GANet-Seg: the U-Net, its soft mask, and the frozen GAN that criticises it."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4.2)
    ax.axis("off")

    def box(x, y, text, colour):
        ax.add_patch(Rectangle((x, y), 1.9, 0.8, facecolor=colour, edgecolor="black", linewidth=0.8))
        ax.text(x + 0.95, y + 0.4, text, ha="center", va="center", fontsize=8)

    def arrow(x0, y0, x1, y1, text=""):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "linewidth": 0.9})
        if text:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.1, text, ha="center", fontsize=7)

    box(0.1, 3.0, "T1, T1ce, T2, FLAIR\n(enhanced)", "#deebf7")
    box(2.6, 3.0, "U-Net\n(trained)", "#9ecae1")
    box(5.1, 3.0, "logits -> L_seg\nCE + Dice (3, 4)", "#fee0d2")
    box(5.1, 1.7, "M = 1 - p(bg)\nL_sparsity (5), L_size (6)", "#fee0d2")
    box(0.1, 0.4, "T1 (normalised)", "#deebf7")
    box(2.6, 0.4, "occlude by M\n+ noise in M", "#f0f0f0")
    box(5.1, 0.4, "generator G\n(frozen) inpaints", "#c7e9c0")
    box(7.6, 0.4, "PatchGAN D\n(frozen): -log D", "#c7e9c0")
    box(7.6, 1.7, "edge map E(M)\n(11, 12)", "#fdd0a2")
    box(9.05, 3.0, "L_adv (7): edge-weighted\n-log D per patch", "#fee0d2")
    arrow(2.0, 3.4, 2.6, 3.4)
    arrow(4.5, 3.4, 5.1, 3.4)
    arrow(3.55, 3.0, 5.1, 2.1)
    arrow(2.0, 0.8, 2.6, 0.8)
    arrow(6.05, 1.7, 3.55, 1.2, "M")
    arrow(4.5, 0.8, 5.1, 0.8)
    arrow(7.0, 0.8, 7.6, 0.8)
    arrow(7.0, 2.1, 7.6, 2.1)
    arrow(9.5, 1.2, 10.0, 3.0)
    arrow(9.5, 2.5, 10.0, 3.0)
    ax.text(0.1, 4.05, "epochs before adversarial_from_epoch: L_seg only (8); after: dynamic weights lambda_i = 1 / (||grad L_i|| + eps) (9, 10)", fontsize=8)
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


# --- notebook 05: the discriminator as a tumour-slice detector ------------------------------


def plot_score_histogram(scores: np.ndarray, positive: np.ndarray, thresholds: list[float]) -> Figure:
    """Mean of the discriminator map per slice, tumour slices against tumour-free ones."""
    scores, positive = np.asarray(scores), np.asarray(positive, bool)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    bins = np.linspace(min(scores.min(), min(thresholds)), max(scores.max(), max(thresholds)), 40)
    ax.hist(scores[~positive], bins=bins, alpha=0.6, color="#4daf4a", label=f"tumour-free ({(~positive).sum()})")
    ax.hist(scores[positive], bins=bins, alpha=0.6, color="#e41a1c", label=f"tumour ({positive.sum()})")
    for threshold in thresholds:
        ax.axvline(threshold, color="black", linestyle=":", linewidth=1)
    ax.set_xlabel("mean of the discriminator map (probability of normal tissue)")
    ax.set_ylabel("slices")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_roc(fpr: np.ndarray, tpr: np.ndarray, auc: float, points: list[dict], label: str, paper_points: list[dict] | None = None) -> Figure:
    """ROC of "mean D map <= threshold = tumour" with the thresholds of a table marked.

    Args:
        points: rows of `detector.sweep_table` (their thresholds are marked on the curve).
        paper_points: the paper's Table 1 operating points, each with sensitivity and fpr.
    """
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot(fpr, tpr, color="#377eb8", label=f"{label}, AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for row in points:
        x, y = 1 - row["specificity"], row["sensitivity"]
        ax.plot(x, y, "o", color="#377eb8")
        ax.annotate(f"{row['threshold']:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    if paper_points:
        ax.plot([p["fpr"] for p in paper_points], [p["sensitivity"] for p in paper_points], "s", color="#e41a1c",
                label="paper, Table 1 (BraTS 2020, its own D)")
        for p in paper_points:
            ax.annotate(f"{p['threshold']:g}", (p["fpr"], p["sensitivity"]), textcoords="offset points", xytext=(4, 2), fontsize=7, color="#e41a1c")
    ax.set_xlabel("1 - specificity (tumour-free slices called tumour)")
    ax.set_ylabel("sensitivity")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_feedback_response(rows: "pandas.DataFrame") -> Figure:
    """L_adv against the fraction of the true tumour mask missed or added (`train_seg.feedback_response`)."""
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for mode, colour, name in (("miss", "#e41a1c", "tumour missed"), ("over", "#377eb8", "normal tissue added")):
        part = rows[rows["mode"] == mode]
        ax.plot(100 * part.fraction, part.l_adv, "o-", color=colour, label=name)
    ax.set_xlabel("% of the tumour's area")
    ax.set_ylabel("L_adv (Eq. 7), mean over slices")
    ax.set_title("does the feedback punish a missed tumour?", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_detector_rocs(curves: dict[str, dict], descriptions: dict[str, str]) -> Figure:
    """ROC curves of several slice detectors on the same slices (from `detector.detector_curves`)."""
    fig, ax = plt.subplots(figsize=(5.4, 4.6))
    colours = ["#377eb8", "#984ea3", "#4daf4a", "#ff7f00", "#e41a1c"]
    for (name, curve), colour in zip(curves.items(), colours):
        ax.plot(curve["fpr"], curve["tpr"], color=colour, label=f"{descriptions.get(name, name)}: AUC {curve['auc']:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("1 - specificity (tumour-free slices called tumour)")
    ax.set_ylabel("sensitivity")
    ax.set_title("tumour-slice detectors, full-size test slices", fontsize=9)
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    return fig


def render_sweep_slice(image: np.ndarray, d_map: np.ndarray, label: np.ndarray, threshold: float, counts: dict, title: str = "") -> Figure:
    """One slice of the sweep: T1 with the truth outlined, the discriminator map over it, the call
    at `threshold`, and the confusion counts of all slices at that threshold.

    Args:
        image: (H, W) T1 in [0, 1]; d_map: (h, w) in [0, 1]; label: (H, W) 0/1/2/4;
        counts: a row of `detector.sweep_table` at `threshold`.
    """
    score = float(d_map.mean())
    called, truth = score <= threshold, bool(label.any())
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.6), gridspec_kw={"width_ratios": [1, 1, 0.8]})
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
    if truth:
        axes[0].contour(label > 0, levels=[0.5], colors="#e41a1c", linewidths=1)
    _bare(axes[0], title or "T1 (truth outlined)")
    axes[1].imshow(image, cmap="gray", vmin=0, vmax=1)
    height, width = image.shape
    shown = axes[1].imshow(d_map, cmap="RdYlGn", vmin=0, vmax=1, alpha=0.55, extent=(-0.5, width - 0.5, height - 0.5, -0.5))
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.02)
    verdict = "tumour" if called else "normal"
    right = "right" if called == truth else "wrong"
    _bare(axes[1], f"D map: mean {score:.3f} {'<=' if called else '>'} {threshold:.3f} -> {verdict} ({right})")
    names = ["TP", "FN", "FP", "TN"]
    colours = ["#4daf4a", "#e41a1c", "#ff7f00", "#999999"]
    axes[2].barh(names[::-1], [counts[n] for n in names][::-1], color=colours[::-1])
    for y, name in enumerate(names[::-1]):
        axes[2].text(counts[name], y, f" {counts[name]}", va="center", fontsize=8)
    axes[2].set_title(f"all slices at {threshold:.3f}: accuracy {counts['accuracy']:.1%}, sensitivity {counts['sensitivity']:.1%}", fontsize=8)
    axes[2].set_xlim(0, 1.25 * max(counts[n] for n in names) + 1)
    fig.tight_layout()
    return fig


# --- notebook 06: evaluation -------------------------------------------------------------------

ERROR_COLOURS = {"TP": "#4daf4a", "FN": "#377eb8", "FP": "#e41a1c"}


def render_case_errors(image: np.ndarray, truth: np.ndarray, prediction: np.ndarray, region: str, title: str = "", scheme: LabelScheme = BRATS) -> Figure:
    """A slice of a subject: FLAIR, the truth, the prediction, and the region's errors
    (green: found, blue: missed, red: false).

    Args:
        image: (H, W) in display orientation (any intensity range); truth, prediction: (H, W) 0/1/2/4.
    """
    true_region, predicted_region = scheme.region_mask(truth, region), scheme.region_mask(prediction, region)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax in axes:
        ax.imshow(image, cmap="gray")
    overlay_labels(axes[1], truth, scheme=scheme)
    overlay_labels(axes[2], prediction, scheme=scheme)
    errors = np.zeros(image.shape + (4,))
    for name, mask in (("TP", true_region & predicted_region), ("FN", true_region & ~predicted_region), ("FP", ~true_region & predicted_region)):
        errors[mask] = (*plt.matplotlib.colors.to_rgb(ERROR_COLOURS[name]), 0.7)
    axes[3].imshow(errors, interpolation="nearest")
    slice_dice = 2 * (true_region & predicted_region).sum() / max(true_region.sum() + predicted_region.sum(), 1)
    for ax, name in zip(axes, [title or "FLAIR", "truth", "prediction", f"{region} on this slice: Dice {slice_dice:.2f}"]):
        _bare(ax, name)
    label_legend(axes[2], scheme)
    axes[3].legend(handles=[Patch(color=c, label=n) for n, c in (("found", ERROR_COLOURS["TP"]), ("missed", ERROR_COLOURS["FN"]), ("false", ERROR_COLOURS["FP"]))],
                   loc="lower right", fontsize=7, framealpha=0.7)
    fig.tight_layout()
    return fig


def plot_metric_distributions(frames: dict[str, "pandas.DataFrame"], metrics: tuple[str, ...] = ("dice", "hd95", "lw_dice")) -> Figure:
    """Per-subject scores (rows of `ganet evaluate`), one panel per metric, boxes per region and variant.

    Args:
        frames: variant -> DataFrame with columns region and the metrics.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    variants = list(frames)
    present = set().union(*(set(frame.region) for frame in frames.values()))
    regions = [r for r in ("WT", "TC", "ET") if r in present]  # whole-tumour masks: WT only
    width = 0.8 / len(variants)
    colours = ["#377eb8", "#ff7f00", "#4daf4a", "#984ea3"]
    rng = np.random.default_rng(0)
    for ax, metric in zip(axes[0], metrics):
        for v, variant in enumerate(variants):
            frame = frames[variant]
            data = [frame.loc[frame.region == region, metric].astype(float).to_numpy() for region in regions]
            positions = np.arange(len(regions)) + (v - (len(variants) - 1) / 2) * width
            ax.boxplot(data, positions=positions, widths=width * 0.8, showfliers=False,
                       patch_artist=True, boxprops={"facecolor": colours[v], "alpha": 0.35})
            for x, values in zip(positions, data):
                ax.plot(x + rng.uniform(-width / 4, width / 4, len(values)), values, ".", color=colours[v], markersize=4)
            ax.plot([], [], "s", color=colours[v], label=variant)
        ax.set_xticks(range(len(regions)), regions)
        ax.set_title({"dice": "Dice", "hd95": "HD95 (mm)", "lw_dice": "lesion-wise Dice", "lw_hd95": "lesion-wise HD95 (mm)"}.get(metric, metric), fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_ablation(scores: dict[str, np.ndarray], summary: list[dict]) -> Figure:
    """The paired comparison of `ablation`. Left, per region: each test subject's Dice difference
    ganet - unet (mean over seeds; a dot), their mean and the bootstrap interval (bar), and 0.
    Right (several seeds): each seed's test-set mean difference, so that one odd seed shows.

    Args:
        scores: region -> (variant, subject, seed) Dice (`ablation.seed_scores`).
        summary: `ablation.ablation_summary` of the same scores.
    """
    seeds = summary[0]["seeds"]
    columns = 2 if seeds > 1 else 1
    fig, axes = plt.subplots(1, columns, figsize=(columns * (1.4 + 1.5 * len(scores)), 3.6), squeeze=False)
    ax = axes[0, 0]
    rng = np.random.default_rng(0)
    for x, row in enumerate(summary):
        per_subject = (scores[row["region"]][0] - scores[row["region"]][1]).mean(axis=1)
        ax.plot(x + rng.uniform(-0.18, 0.18, len(per_subject)), per_subject, ".", color="#999999", markersize=5)
        colour = {"better": "#4daf4a", "worse": "#e41a1c"}.get(row["verdict"], "#377eb8")
        ax.errorbar([x + 0.3], [row["difference"]], yerr=[[row["difference"] - row["ci_low"]], [row["ci_high"] - row["difference"]]],
                    fmt="o", color=colour, capsize=4, linewidth=2)
        ax.annotate(row["verdict"] + (" (1 seed)" if seeds == 1 else ""), (x + 0.3, row["ci_high"]), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7, color=colour)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(summary)), [row["region"] for row in summary])
    ax.set_xlim(-0.5, len(summary) - 0.2)
    ax.set_ylabel("Dice ganet - unet")
    ax.set_title(f"per subject (grey), {summary[0]['subjects']} subjects x {seeds} seed(s);\nbar: mean and 95 % bootstrap CI", fontsize=8)
    if seeds > 1:
        ax = axes[0, 1]
        colours = plt.get_cmap("tab10")
        for x, row in enumerate(summary):
            per_seed = (scores[row["region"]][0] - scores[row["region"]][1]).mean(axis=0)
            for k, value in enumerate(per_seed):
                ax.plot(x + (k - (seeds - 1) / 2) * 0.08, value, "o", color=colours(k % 10), label=f"seed {k}" if x == 0 else None)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(summary)), [row["region"] for row in summary])
        ax.set_xlim(-0.5, len(summary) - 0.5)
        ax.set_title("per seed: mean over the test subjects", fontsize=8)
        ax.legend(fontsize=6.5, loc="best")
    fig.tight_layout()
    return fig


def plot_postprocessing(truth: np.ndarray, raw: np.ndarray, processed: np.ndarray, title: str = "", scheme: LabelScheme = BRATS) -> Figure:
    """What the post-processing removed from one subject: whole-tumour masks projected along the
    axial axis (any slice), truth, raw arg-max (removed voxels in red) and the post-processed map.

    Args:
        truth, raw, processed: (X, Y, Z) label volumes in the scheme's labels.
    """
    def projection(volume: np.ndarray) -> np.ndarray:
        return axial_slices(np.isin(volume, scheme.regions["WT"])).any(axis=0)  # (H, W) in display orientation

    truth_2d, raw_2d, kept_2d = projection(truth), projection(raw), projection(processed)
    removed = np.isin(raw, scheme.regions["WT"]) & ~np.isin(processed, scheme.regions["WT"])
    removed_2d = projection(np.where(removed, scheme.regions["WT"][0], 0))
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.4))
    panels = [(truth_2d, None, "truth (WT, all slices)"), (raw_2d, removed_2d, f"raw arg-max: {int(removed.sum())} voxels removed (red)"),
              (kept_2d, None, "post-processed")]
    for ax, (mask, red, name) in zip(axes, panels):
        picture = np.zeros(mask.shape + (3,))
        picture[mask] = (0.35, 0.55, 0.85)
        if red is not None:
            picture[red] = (0.9, 0.1, 0.1)
        ax.imshow(picture, interpolation="nearest")
        _bare(ax, name)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_slice_position(rows: list[dict], bins: int = 12) -> Figure:
    """Share of tumour slices against slice position, and the brain area there (sweep rows with
    the position covariates): why a slice's position alone predicts tumour under Table 1's protocol."""
    position = np.array([r["relative_position"] for r in rows])
    positive = np.array([r["positive"] for r in rows])
    fraction = np.array([r["area_fraction"] for r in rows])
    with_brain = np.array([r["brain_area"] > 0 for r in rows])
    edges = np.linspace(position[with_brain].min(), position[with_brain].max(), bins + 1)
    which = np.clip(np.searchsorted(edges, position, side="right") - 1, 0, bins - 1)
    centres = (edges[:-1] + edges[1:]) / 2
    share = np.array([positive[with_brain & (which == b)].mean() if (with_brain & (which == b)).any() else np.nan for b in range(bins)])
    area = np.array([fraction[with_brain & (which == b)].mean() if (with_brain & (which == b)).any() else np.nan for b in range(bins)])
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.bar(centres, share, width=(edges[1] - edges[0]) * 0.85, color="#e41a1c", alpha=0.6, label="share of slices with tumour")
    ax.plot(centres, area, "o-", color="#377eb8", label="mean brain area (fraction of the subject's largest)")
    ax.set_xlabel("slice position relative to the subject's brain centre (fraction of its brain slices)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax.set_title(f"{int(with_brain.sum())} test slices with brain, {int(positive[with_brain].sum())} with tumour", fontsize=9)
    fig.tight_layout()
    return fig


def plot_domain_shift(groups: dict[str, np.ndarray]) -> Figure:
    """The discriminator's mean map ("normal" probability) per slice, one histogram per group."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    colours = ["#4daf4a", "#377eb8", "#e41a1c"]
    values = np.concatenate([v for v in groups.values() if len(v)])
    bins = np.linspace(values.min(), values.max(), 31) if len(values) else 10
    for (name, scores), colour in zip(groups.items(), colours):
        if len(scores):
            ax.hist(scores, bins=bins, density=True, histtype="step", linewidth=1.6, color=colour,
                    label=f"{name}: {len(scores)} slices, median {np.median(scores):.3f}")
    ax.set_xlabel("mean of the discriminator's map (probability of normal tissue)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
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
    ax.hist(position[normal], bins=bins, color="#4daf4a", alpha=0.8, label=f"the GAN's normal slices ({int(normal.sum())})")
    ax.set_xlabel("slice position relative to the subject's brain centre (fraction of its brain slices)")
    ax.set_ylabel("slices")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_panels(panels: list[tuple[str, np.ndarray]], title: str = "", columns: int = 4) -> Figure:
    """Intermediate arrays of one computation side by side (title, 2D array), each with its own colour bar."""
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.1 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, (name, array) in zip(axes.ravel(), panels):
        shown = ax.imshow(np.asarray(array, float), cmap="gray" if array.shape[0] > 32 else "magma", interpolation="nearest")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
        _bare(ax, name)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_lesion_matching(truth: np.ndarray, prediction: np.ndarray, matching, title: str = "") -> Figure:
    """The lesion matching of the BraTS lesion-wise evaluation (`metrics.match_lesions`) seen from
    above (every axial slice at once): truth lesions, the region their dilation reaches, and the
    predicted components, matched (green) or false positive (red).

    Args:
        truth, prediction: (X, Y, Z) boolean masks of one region. matching: `match_lesions(prediction, truth)`.
    """
    def top(volume: np.ndarray) -> np.ndarray:
        return axial_slices(volume).max(axis=0)  # (H, W), display orientation

    reach = np.zeros(truth.shape, bool)
    for _, near, region, _ in matching.lesions:
        reach[near] |= region
    matched = {c for *_, labels in matching.lesions for c in labels}
    matched_mask = np.isin(matching.components, list(matched)) if matched else np.zeros(truth.shape, bool)
    false_positive = (matching.components > 0) & ~matched_mask
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.4))
    lesion_top = top(matching.lesion_map.astype(float))
    axes[0].imshow(np.where(lesion_top > 0, lesion_top, np.nan), cmap="tab10", interpolation="nearest", vmin=0.5, vmax=10.5)
    axes[0].contour(top(reach.astype(float)), levels=[0.5], colors="#555555", linewidths=0.8)
    _bare(axes[0], f"{len(matching.lesions)} truth lesion(s) (colours),\nthe reach of their dilation (grey outline)")
    picture = np.ones(lesion_top.shape + (3,))
    picture[top(matched_mask.astype(float)) > 0] = (0.30, 0.69, 0.29)
    picture[top(false_positive.astype(float)) > 0] = (0.89, 0.10, 0.11)
    axes[1].imshow(picture, interpolation="nearest")
    axes[1].contour(top(reach.astype(float)), levels=[0.5], colors="#555555", linewidths=0.8)
    n_fp = len(set(np.unique(matching.components[false_positive]).tolist()))
    _bare(axes[1], f"{matching.count} predicted component(s):\n{len(matched)} matched (green), {n_fp} false positive(s) (red)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
