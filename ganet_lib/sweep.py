"""Table 1: how well the pre-trained discriminator alone tells tumour slices from normal ones.

The authors' protocol (SPEC section 5): every axial slice of every test subject, the T1 slice at
full size (not cropped, not resized, not enhanced), the mean of the discriminator's patch map
("probability of normal tissue"); a slice is called "tumour" when that mean is <= a threshold,
and is truly positive when its label map holds any tumour. The kit adds TN and specificity to
the paper's columns, and the whole ROC curve with its AUC.

One choice the paper leaves open: "raw" T1 still gets the per-volume intensity scaling of
training (`intensity`: brain percentiles 0.5 and 99.5 become 0 and 1, background 0); the
discriminator has never seen other intensities, so unscaled values would measure nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ganet_lib.config import PreprocessConfig
from ganet_lib.data import BratsCase, axial_slices, brain_mask, load_label, load_modalities
from ganet_lib.errors import KitInputError
from ganet_lib.intensity import normalise, percentile_scale
from ganet_lib.metrics import roc_auc, roc_curve
from ganet_lib.run import Run
from ganet_lib.train_gan import discriminator_maps, load_gan

PAPER_THRESHOLDS = (0.1, 0.2, 0.3, 0.4)


def full_size_t1(case: BratsCase, settings: PreprocessConfig) -> np.ndarray:
    """The case's T1 as (Z, H, W) axial slices in display orientation, scaled exactly as the
    training cache scales it (same brain, same percentiles over the slices training keeps)."""
    volumes, _ = load_modalities(case)
    brain = axial_slices(brain_mask(case, volumes))  # (Z, H, W)
    slices = axial_slices(volumes[case.modalities.index("t1")])
    kept = brain.sum(axis=(1, 2)) >= settings.min_brain_pixels  # the slices `preprocess_case` keeps
    offset, gain = percentile_scale(slices[kept][brain[kept]], settings.low_percentile, settings.clip_percentile)
    return normalise(slices, brain, offset, gain)


@torch.no_grad()
def slice_scores(discriminator: torch.nn.Module, cases: list[BratsCase], settings: PreprocessConfig, batch_size: int = 16, progress: bool = True) -> list[dict]:
    """One row per axial slice of every case: subject, z, positive (any tumour), score (mean of
    the discriminator's map) and brain (whether the slice shows any brain)."""
    device = next(discriminator.parameters()).device
    rows = []
    for case in tqdm(cases, desc="discriminator sweep", unit="case", disable=not progress):
        slices = full_size_t1(case, settings)
        tumour = axial_slices(load_label(case)).any(axis=(1, 2))
        for start in range(0, len(slices), batch_size):
            batch = torch.from_numpy(slices[start : start + batch_size, None]).to(device)
            means = discriminator_maps(discriminator, batch).mean(dim=(1, 2)).cpu().numpy()
            for offset, score in enumerate(means):
                z = start + offset
                rows.append({"subject": case.case_id, "z": z, "positive": bool(tumour[z]), "score": float(score), "brain": bool(slices[z].any())})
    return rows


def sweep_table(scores: np.ndarray, positive: np.ndarray, thresholds: tuple[float, ...] = PAPER_THRESHOLDS) -> list[dict]:
    """Table 1's rows: "tumour" when score <= threshold. Accuracy, sensitivity and specificity are fractions."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    rows = []
    for threshold in thresholds:
        called = scores <= threshold
        tp, fn = int((called & positive).sum()), int((~called & positive).sum())
        fp, tn = int((called & ~positive).sum()), int((~called & ~positive).sum())
        rows.append({
            "threshold": float(threshold),
            "accuracy": (tp + tn) / len(scores),
            "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
            "specificity": tn / (tn + fp) if tn + fp else float("nan"),
            "TP": tp, "FN": fn, "FP": fp, "TN": tn,
        })
    return rows


def sweep_roc(scores: np.ndarray, positive: np.ndarray) -> dict:
    """The ROC curve of "lower score = tumour" and its AUC."""
    fpr, tpr, thresholds = roc_curve(-np.asarray(scores, float), positive)
    return {"fpr": fpr, "tpr": tpr, "thresholds": -thresholds, "auc": roc_auc(-np.asarray(scores, float), positive)}


def sweep_for_run(run: Run, checkpoint: Path | str | None = None, progress: bool = True) -> list[dict]:
    """`slice_scores` of the run's test subjects with its pre-trained discriminator (gan/best.pt)."""
    if "t1" not in run.config.data.modalities:
        raise KitInputError(f"The discriminator sweep scores T1 slices, which data.modalities ({', '.join(run.config.data.modalities)}) leaves out; add t1.")
    checkpoint = Path(checkpoint) if checkpoint else run.run_dir / "gan" / "best.pt"
    if not checkpoint.is_file():
        raise KitInputError(f"No pre-trained GAN at '{checkpoint}'; run `ganet pretrain-gan --run {run.run_dir}` (or notebook 03) first.")
    _, discriminator, _ = load_gan(checkpoint, run.config.model)
    if torch.cuda.is_available():
        discriminator = discriminator.cuda()
    test = set(run.split["test"])
    cases = [case for case in run.cases if case.case_id in test]
    return slice_scores(discriminator, cases, run.config.preprocess, progress=progress)


def save_sweep(run: Run, rows: list[dict], thresholds: tuple[float, ...] = PAPER_THRESHOLDS) -> list[dict]:
    """Table 1 of `slice_scores` rows; both go to the run's tables (sweep_slices.csv, table1_sweep.csv)."""
    from ganet_lib.files import atomic_write_csv

    table = sweep_table(np.array([r["score"] for r in rows]), np.array([r["positive"] for r in rows]), thresholds)
    atomic_write_csv(run.table_path("sweep_slices.csv"), rows)
    atomic_write_csv(run.table_path("table1_sweep.csv"), table)
    return table


def format_table(rows: list[dict]) -> str:
    """Table 1's rows as aligned text, percentages as the paper prints them."""
    lines = [f"{'threshold':>9}  {'accuracy':>8}  {'sensitivity':>11}  {'specificity':>11}  {'TP':>6}  {'FN':>6}  {'FP':>6}  {'TN':>6}"]
    for r in rows:
        lines.append(f"{r['threshold']:>9.3g}  {r['accuracy']:>8.2%}  {r['sensitivity']:>11.2%}  {r['specificity']:>11.2%}  "
                     f"{r['TP']:>6}  {r['FN']:>6}  {r['FP']:>6}  {r['TN']:>6}")
    return "\n".join(lines)
