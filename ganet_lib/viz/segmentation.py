"""Figures of notebook 04: training curves, the architecture, what the adversarial feedback sees."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from ganet_lib.data.labels import BRATS, LabelScheme
from ganet_lib.viz.common import _bare, overlay_labels

if TYPE_CHECKING:  # pandas is needed only by the notebooks that pass data frames
    import pandas as pd


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
            axes[2].plot(
                epochs,
                [row[f"val_dice_{region}"] for row in history],
                style,
                color=colour,
                label=f"{variant}: {region}",
            )
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
    arrow(6.05, 1.7, x1=3.55, y1=1.2, text="M")
    arrow(4.5, 0.8, 5.1, 0.8)
    arrow(7.0, 0.8, 7.6, 0.8)
    arrow(7.0, 2.1, 7.6, 2.1)
    arrow(9.5, 1.2, 10.0, 3.0)
    arrow(9.5, 2.5, 10.0, 3.0)
    ax.text(
        0.1,
        4.05,
        "epochs before adversarial_from_epoch: L_seg only (8); after: dynamic weights lambda_i = 1 / (||grad L_i|| + "
        "eps) (9, 10)",
        fontsize=8,
    )
    return fig


def plot_feedback_response(rows: pd.DataFrame) -> Figure:
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


def plot_in_the_loop(
    histories: dict[str, list[dict]],
    step_losses: dict[str, list[float]],
    image: np.ndarray,
    truth: np.ndarray,
    predictions: dict[str, np.ndarray],
    scheme: LabelScheme = BRATS,
    rounding: float = 1e-4,
    judged: tuple[int, ...] | list[int] = (),
) -> Figure:
    """Two short trainings side by side: their total loss at every optimiser step, the difference
    between the two per step (where a wrong function shows even when nothing is learnt), the
    validation Dice per epoch, and one validation slice (the display channel) with the truth and each
    training's prediction. `rounding`: the relative difference drawn as the line below which two
    trainings agree (`in_the_loop.PART_RELATIVE`); `judged`: the steps (from 1) that judge the functions
    (`in_the_loop.judged_steps`), shaded."""
    fig, axes = plt.subplots(1, 4 + len(predictions), figsize=(3.2 * (4 + len(predictions)), 3.2))
    styles = ("-", "--", ":")
    for (label, losses), style in zip(step_losses.items(), styles):
        axes[0].plot(np.arange(1, len(losses) + 1), losses, style, marker=".", label=label)
    first, second = (np.asarray(losses, dtype=float) for losses in step_losses.values())
    steps = np.arange(1, len(first) + 1)
    difference = np.abs(first - second)  # (steps,)
    # On a log axis a difference of exactly 0 (the same functions) would vanish: drawn at the floor.
    floor = 1e-9
    axes[1].semilogy(steps, np.maximum(difference, floor), marker=".", color="#e41a1c", label="the two trainings")
    axes[1].semilogy(steps, rounding * np.abs(second), ":", color="grey", label=f"{rounding:g} of the loss")
    for number, step in enumerate(judged):
        label = "where your functions first act" if number == 0 else None
        axes[1].axvspan(step - 0.5, step + 0.5, color="#fdd49e", alpha=0.8, zorder=0, label=label)
    axes[1].set_ylim(floor / 2, max(1.0, 2 * difference.max()))
    for (label, history), style in zip(histories.items(), styles):
        axes[2].plot(
            [row["epoch"] for row in history], [row["val_dice_mean"] for row in history], style, marker=".", label=label
        )
    per_epoch = len(first) // max(len(next(iter(histories.values()))), 1)
    for ax in axes[:2]:
        for boundary in np.arange(per_epoch, len(first), per_epoch) + 0.5:
            ax.axvline(boundary, color="#cccccc", linewidth=0.8, zorder=0)  # epoch boundaries
        ax.set_xlabel(f"optimiser step ({per_epoch} per epoch)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_title("training loss per step (Eq. 9 from epoch 2)", fontsize=9)
    if len(judged):
        at_most = float(difference[np.asarray(judged) - 1].max())
        axes[1].set_title(f"|difference| per step\nat most {at_most:.2g} where judged (shaded)", fontsize=9)
    else:
        axes[1].set_title(
            f"|difference| per step: largest {difference.max():.2g} (step {int(difference.argmax()) + 1})", fontsize=9
        )
    axes[1].set_ylabel(f"(0 drawn at {floor:g})", fontsize=8)
    axes[2].set_title("validation Dice, mean over regions", fontsize=9)
    axes[2].set_xlabel("epoch")
    axes[2].set_ylim(0, 1)
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].legend(fontsize=7)
    axes[3].imshow(image, cmap="gray")
    overlay_labels(axes[3], truth, scheme=scheme)
    _bare(axes[3], "truth")
    for ax, (label, prediction) in zip(axes[4:], predictions.items()):
        ax.imshow(image, cmap="gray")
        overlay_labels(ax, prediction, scheme=scheme)
        _bare(ax, textwrap.fill(label, 30))
    # The labels can be long ("your l_adv, soft_dice_loss (the kit's for the rest)"): one legend for the
    # loss and Dice panels, below them, instead of one inside each.
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    return fig
