"""Figures of notebook 06: errors per case, per-subject scores, the ablation, the post-processing and
the lesion matching."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ganet_lib.data.cases import axial_slices
from ganet_lib.data.labels import BRATS, LabelScheme
from ganet_lib.viz.common import _bare, label_legend, overlay_labels

if TYPE_CHECKING:  # pandas is needed only by the notebooks that pass data frames
    import pandas as pd

ERROR_COLOURS = {"TP": "#4daf4a", "FN": "#377eb8", "FP": "#e41a1c"}  # found, missed, false


def render_case_errors(
    image: np.ndarray,
    truth: np.ndarray,
    prediction: np.ndarray,
    region: str,
    title: str = "",
    scheme: LabelScheme = BRATS,
) -> Figure:
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
    for name, mask in (
        ("TP", true_region & predicted_region),
        ("FN", true_region & ~predicted_region),
        ("FP", ~true_region & predicted_region),
    ):
        errors[mask] = (*plt.matplotlib.colors.to_rgb(ERROR_COLOURS[name]), 0.7)
    axes[3].imshow(errors, interpolation="nearest")
    slice_dice = 2 * (true_region & predicted_region).sum() / max(true_region.sum() + predicted_region.sum(), 1)
    for ax, name in zip(
        axes, [title or "FLAIR", "truth", "prediction", f"{region} on this slice: Dice {slice_dice:.2f}"]
    ):
        _bare(ax, name)
    label_legend(axes[2], scheme)
    axes[3].legend(
        handles=[
            Patch(color=c, label=n)
            for n, c in (
                ("found", ERROR_COLOURS["TP"]),
                ("missed", ERROR_COLOURS["FN"]),
                ("false", ERROR_COLOURS["FP"]),
            )
        ],
        loc="lower right",
        fontsize=7,
        framealpha=0.7,
    )
    fig.tight_layout()
    return fig


def plot_metric_distributions(
    frames: dict[str, pd.DataFrame], metrics: tuple[str, ...] = ("dice", "hd95", "lw_dice")
) -> Figure:
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
            ax.boxplot(
                data,
                positions=positions,
                widths=width * 0.8,
                showfliers=False,
                patch_artist=True,
                boxprops={"facecolor": colours[v], "alpha": 0.35},
            )
            for x, values in zip(positions, data):
                ax.plot(
                    x + rng.uniform(-width / 4, width / 4, len(values)), values, ".", color=colours[v], markersize=4
                )
            ax.plot([], [], "s", color=colours[v], label=variant)
        ax.set_xticks(range(len(regions)), regions)
        ax.set_title(
            {
                "dice": "Dice",
                "hd95": "HD95 (mm)",
                "lw_dice": "lesion-wise Dice",
                "lw_hd95": "lesion-wise HD95 (mm)",
            }.get(metric, metric),
            fontsize=9,
        )
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
        ax.errorbar(
            [x + 0.3],
            [row["difference"]],
            yerr=[[row["difference"] - row["ci_low"]], [row["ci_high"] - row["difference"]]],
            fmt="o",
            color=colour,
            capsize=4,
            linewidth=2,
        )
        ax.annotate(
            row["verdict"] + (" (1 seed)" if seeds == 1 else ""),
            (x + 0.3, row["ci_high"]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=7,
            color=colour,
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(summary)), [row["region"] for row in summary])
    ax.set_xlim(-0.5, len(summary) - 0.2)
    ax.set_ylabel("Dice ganet - unet")
    ax.set_title(
        f"per subject (grey), {summary[0]['subjects']} subjects x {seeds} seed(s);\nbar: mean and 95 % bootstrap CI",
        fontsize=8,
    )
    if seeds > 1:
        ax = axes[0, 1]
        colours = plt.get_cmap("tab10")
        for x, row in enumerate(summary):
            per_seed = (scores[row["region"]][0] - scores[row["region"]][1]).mean(axis=0)
            for k, value in enumerate(per_seed):
                ax.plot(
                    x + (k - (seeds - 1) / 2) * 0.08,
                    value,
                    "o",
                    color=colours(k % 10),
                    label=f"seed {k}" if x == 0 else None,
                )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(summary)), [row["region"] for row in summary])
        ax.set_xlim(-0.5, len(summary) - 0.5)
        ax.set_title("per seed: mean over the test subjects", fontsize=8)
        ax.legend(fontsize=6.5, loc="best")
    fig.tight_layout()
    return fig


def plot_postprocessing(
    truth: np.ndarray, raw: np.ndarray, processed: np.ndarray, title: str = "", scheme: LabelScheme = BRATS
) -> Figure:
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
    panels = [
        (truth_2d, None, "truth (WT, all slices)"),
        (raw_2d, removed_2d, f"raw arg-max: {int(removed.sum())} voxels removed (red)"),
        (kept_2d, None, "post-processed"),
    ]
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
    axes[0].imshow(
        np.where(lesion_top > 0, lesion_top, np.nan), cmap="tab10", interpolation="nearest", vmin=0.5, vmax=10.5
    )
    axes[0].contour(top(reach.astype(float)), levels=[0.5], colors="#555555", linewidths=0.8)
    _bare(axes[0], f"{len(matching.lesions)} truth lesion(s) (colours),\nthe reach of their dilation (grey outline)")
    picture = np.ones(lesion_top.shape + (3,))
    picture[top(matched_mask.astype(float)) > 0] = (0.30, 0.69, 0.29)
    picture[top(false_positive.astype(float)) > 0] = (0.89, 0.10, 0.11)
    axes[1].imshow(picture, interpolation="nearest")
    axes[1].contour(top(reach.astype(float)), levels=[0.5], colors="#555555", linewidths=0.8)
    n_fp = len(set(np.unique(matching.components[false_positive]).tolist()))
    _bare(
        axes[1],
        f"{matching.count} predicted component(s):\n{len(matched)} matched (green), {n_fp} false positive(s) (red)",
    )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
