"""Shared pieces of every figure: saving atomically, label overlays, bare axes, panels of arrays."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ganet_lib.data.labels import BRATS, LabelScheme
from ganet_lib.files import atomic_file

# Colours of the labels in every overlay, per label scheme.
_BRATS_COLOURS = {1: ("NCR/NET (1)", "#e41a1c"), 2: ("edema (2)", "#4daf4a"), 4: ("enhancing (4)", "#ffd92f")}
LABEL_COLOURS = {  # the kit's label values (the cavity is the kit's 5, a 2024+ file's 4)
    "brats": _BRATS_COLOURS,
    "brats-rc": {**_BRATS_COLOURS, 5: ("resection cavity (5)", "#984ea3")},
    "whole-tumour": {1: ("tumour (1)", "#ff7f00")},
}
MODALITY_TITLES = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR"}


def figure_title(fig: Figure) -> str:
    """What the figure shows in words: its suptitle, else its panels' titles (for alt texts)."""
    titles = [fig.get_suptitle()] if fig.get_suptitle() else [ax.get_title() for ax in fig.axes if ax.get_title()]
    return "; ".join(dict.fromkeys(titles))  # each title once, in order


def save_figure(fig: Figure, path: Path | str, dpi: int = 110) -> Path:
    """Save `fig` as PNG through a temporary file and a rename (no half-written figures), its title
    in the PNG's metadata (`ganet book` makes the figure's alt text from it)."""
    with atomic_file(path) as partial:
        fig.savefig(partial, dpi=dpi, bbox_inches="tight", metadata={"Title": figure_title(fig)})
    return Path(path)


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


def plot_panels(panels: list[tuple[str, np.ndarray]], title: str = "", columns: int = 4) -> Figure:
    """Intermediate arrays of one computation side by side (title, 2D array), each with its own colour bar."""
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.1 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    for ax, (name, array) in zip(axes.ravel(), panels):
        shown = ax.imshow(
            np.asarray(array, float), cmap="gray" if array.shape[0] > 32 else "magma", interpolation="nearest"
        )
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
        _bare(ax, name)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
