"""Figures of notebook 05: Table 1's scores, ROC curves, slice position, the domain-shift control."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ganet_lib.viz.common import _bare


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


def plot_roc(
    fpr: np.ndarray, tpr: np.ndarray, auc: float, points: list[dict], label: str, paper_points: list[dict] | None = None
) -> Figure:
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
        ax.plot(
            [p["fpr"] for p in paper_points],
            [p["sensitivity"] for p in paper_points],
            "s",
            color="#e41a1c",
            label="paper, Table 1 (BraTS 2020, its own D)",
        )
        for p in paper_points:
            ax.annotate(
                f"{p['threshold']:g}",
                (p["fpr"], p["sensitivity"]),
                textcoords="offset points",
                xytext=(4, 2),
                fontsize=7,
                color="#e41a1c",
            )
    ax.set_xlabel("1 - specificity (tumour-free slices called tumour)")
    ax.set_ylabel("sensitivity")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_detector_rocs(curves: dict[str, dict], descriptions: dict[str, str]) -> Figure:
    """ROC curves of several slice detectors on the same slices (from `detector.detector_curves`)."""
    fig, ax = plt.subplots(figsize=(5.8, 5.0))
    colours = ["#377eb8", "#984ea3", "#4daf4a", "#ff7f00", "#e41a1c", "#000000", "#888888"]
    for (name, curve), colour in zip(curves.items(), colours * 2):
        description = descriptions.get(name, name)
        ax.plot(
            curve["fpr"],
            curve["tpr"],
            color=colour,
            linestyle="--" if "position only" in description else "-",
            label=f"{description}: AUC {curve['auc']:.3f}",
        )  # dashed: slice position, no image content
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("1 - specificity (tumour-free slices called tumour)")
    ax.set_ylabel("sensitivity")
    ax.set_title("tumour-slice detectors, full-size test slices", fontsize=9)
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    return fig


def render_sweep_slice(
    image: np.ndarray, d_map: np.ndarray, label: np.ndarray, threshold: float, counts: dict, title: str = ""
) -> Figure:
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
    shown = axes[1].imshow(
        d_map, cmap="RdYlGn", vmin=0, vmax=1, alpha=0.55, extent=(-0.5, width - 0.5, height - 0.5, -0.5)
    )
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.02)
    verdict = "tumour" if called else "normal"
    right = "right" if called == truth else "wrong"
    _bare(axes[1], f"D map: mean {score:.3f} {'<=' if called else '>'} {threshold:.3f} -> {verdict} ({right})")
    names = ["TP", "FN", "FP", "TN"]
    colours = ["#4daf4a", "#e41a1c", "#ff7f00", "#999999"]
    axes[2].barh(names[::-1], [counts[n] for n in names][::-1], color=colours[::-1])
    for y, name in enumerate(names[::-1]):
        axes[2].text(counts[name], y, f" {counts[name]}", va="center", fontsize=8)
    axes[2].set_title(
        f"all slices at {threshold:.3f}: accuracy {counts['accuracy']:.1%}, sensitivity {counts['sensitivity']:.1%}",
        fontsize=8,
    )
    axes[2].set_xlim(0, 1.25 * max(counts[n] for n in names) + 1)
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
    share = np.array(
        [
            positive[with_brain & (which == b)].mean() if (with_brain & (which == b)).any() else np.nan
            for b in range(bins)
        ]
    )
    area = np.array(
        [
            fraction[with_brain & (which == b)].mean() if (with_brain & (which == b)).any() else np.nan
            for b in range(bins)
        ]
    )
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.bar(
        centres,
        share,
        width=(edges[1] - edges[0]) * 0.85,
        color="#e41a1c",
        alpha=0.6,
        label="share of slices with tumour",
    )
    ax.plot(centres, area, "o-", color="#377eb8", label="mean brain area (fraction of the subject's largest)")
    ax.set_xlabel("slice position relative to the subject's brain centre (fraction of its brain slices)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax.set_title(
        f"{int(with_brain.sum())} test slices with brain, {int(positive[with_brain].sum())} with tumour", fontsize=9
    )
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
            ax.hist(
                scores,
                bins=bins,
                density=True,
                histtype="step",
                linewidth=1.6,
                color=colour,
                label=f"{name}: {len(scores)} slices, median {np.median(scores):.3f}",
            )
    ax.set_xlabel("mean of the discriminator's map (probability of normal tissue)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
