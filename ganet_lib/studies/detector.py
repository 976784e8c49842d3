"""The pre-trained discriminator as a tumour-slice detector (Table 1), and what it is compared with.

The paper's claim: a discriminator that learned normal tissue finds tumours. Its protocol (SPEC
section 5): every axial slice of every test subject, the T1 slice at full size (not cropped, not
resized, not enhanced), the mean of the discriminator's patch map ("probability of normal
tissue"); a slice is called "tumour" when that mean is <= a threshold, and is truly positive when
its label map holds any tumour. The kit adds TN and specificity to the paper's columns, the whole
ROC curve with its AUC, and the same ROC for detectors the paper never shows (no anchor either),
so that a reader sees what the discriminator adds:

- `t1_mean` and `flair_mean`: the mean T1 / FLAIR intensity inside the brain (trivial intensity
  cues; a tumour darkens T1 and brightens FLAIR, so "tumour" is a low T1 and a high FLAIR mean);
- `residual`: the generator's own inpainting residual: every brain patch is occluded once (four
  passes of a square grid), inpainted by the frozen generator, and the mean |residual| inside the
  brain is the score (reconstruction-based anomaly detection; high = tumour);
- `d_mean` (the paper's) and, as reductions of the same map, `d_p25` (its 25th percentile).

Two views of the same test slices: `full size` (the authors' protocol) and `as trained` (cropped
and resized like the GAN's training slices, only slices with brain).

One choice the paper leaves open: "raw" T1 still gets the per-volume intensity scaling of
training (`intensity`: brain percentiles 0.5 and 99.5 become 0 and 1, background 0); the
discriminator has never seen other intensities, so unscaled values would measure nothing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ganet_lib.config import PreprocessConfig, require_t1
from ganet_lib.data.cases import BratsCase, axial_slices, brain_mask, load_label, load_modalities
from ganet_lib.data.intensity import normalise, percentile_scale
from ganet_lib.errors import KitInputError
from ganet_lib.evaluation.metrics import roc_auc, roc_curve
from ganet_lib.files import atomic_write_csv
from ganet_lib.method.networks import load_gan
from ganet_lib.method.preprocess import (
    SliceCache,
    brats_sources,
    build_slice_cache,
    gan_preprocess,
    nfbs_sources,
    tumour_free_slices,
)
from ganet_lib.method.train_gan import inpaint, normal_validation_ids
from ganet_lib.run import Run
from ganet_lib.studies.position import add_position_covariates, position_table

PAPER_THRESHOLDS = (0.1, 0.2, 0.3, 0.4)
# Each detector's score, oriented so that a higher value means "tumour" (the paper's D mean is negated).
DETECTORS = {
    "d_mean": "discriminator, mean of its map (the paper's)",
    "d_p25": "discriminator, 25th percentile of its map",
    "t1_mean": "mean T1 in the brain (lower = tumour)",
    "flair_mean": "mean FLAIR in the brain (higher = tumour)",
    "residual": "generator's inpainting residual (higher = tumour)",
    # Slice position, no image content (`position`): what any slice-level detector must beat.
    "brain_area": "brain area of the slice (larger = tumour; position only)",
    "centre_closeness": "closeness to the subject's brain-centre slice (closer = tumour; position only)",
}
POSITION_ONLY = ("brain_area", "centre_closeness")


# --- the discriminator's map ---------------------------------------------------------------------


@torch.no_grad()
def discriminator_maps(discriminator: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """sigmoid(D(image)): per-patch probability of "normal tissue", (B, 1, H, W) in [0, 1] -> (B, h, w)."""
    return torch.sigmoid(discriminator(images * 2 - 1))[:, 0]


@torch.no_grad()
def discriminator_patch_means(discriminator: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Mean over the patch map of sigmoid(D(image)): the probability of "normal tissue" per slice, (B,)."""
    return discriminator_maps(discriminator, images).mean(dim=(1, 2))


def discriminator_evidence(discriminator: torch.nn.Module, images: torch.Tensor, tumour: np.ndarray) -> dict:
    """How well the mean of the discriminator's map tells tumour slices from tumour-free ones.

    A slice whose map says "less normal" (a lower mean) should be a tumour slice: the AUC of
    -mean for the tumour class; 0.5 is chance.
    """
    scores = discriminator_patch_means(discriminator, images).numpy()
    return {
        "auc": roc_auc(-scores, tumour),
        "tumour_slices": int(tumour.sum()),
        "tumour_free_slices": int((~tumour).sum()),
        "mean_tumour": float(scores[tumour].mean()),
        "mean_tumour_free": float(scores[~tumour].mean()),
    }


# --- the baselines --------------------------------------------------------------------------------


@torch.no_grad()
def inpainting_residual(
    generator_net: torch.nn.Module, images: torch.Tensor, patch_fraction: float = 0.15, seed: int = 0
) -> torch.Tensor:
    """Mean |inpainted - image| inside the brain when every brain patch is occluded once.

    The slice is tiled by squares of side `patch_fraction` x H; four passes occlude every other
    square in both directions (offsets (0, 0), (s, 0), (0, s), (s, s) on a 2s grid), so each pixel
    is in exactly one hole. Sides are padded to a multiple of 16 for the U-Net.

    Args:
        images: (B, 1, H, W) in [0, 1], background 0.

    Returns:
        (B,) scores; 0 for a slice without brain.
    """
    batch, _, height, width = images.shape
    pad_h, pad_w = (-height) % 16, (-width) % 16
    padded = F.pad(images, (0, pad_w, 0, pad_h))
    side = max(2, round(patch_fraction * height))
    rows = torch.arange(padded.shape[2]).view(-1, 1) // side
    cols = torch.arange(padded.shape[3]).view(1, -1) // side
    brain = (padded > 0).float()
    residual = torch.zeros_like(padded)
    noise = torch.Generator().manual_seed(seed)
    for row_parity in (0, 1):
        for col_parity in (0, 1):
            holes = ((rows % 2 == row_parity) & (cols % 2 == col_parity)).float().to(images.device)  # (H, W)
            mask = holes.expand_as(padded) * brain
            filled = inpaint(generator_net, padded, mask, noise)
            residual += (filled - padded).abs() * mask
    total = (residual * brain).sum(dim=(1, 2, 3))
    return (total / brain.sum(dim=(1, 2, 3)).clamp(min=1)).cpu()


@torch.no_grad()
def slice_detector_scores(
    discriminator: torch.nn.Module,
    generator_net: torch.nn.Module | None,
    t1: torch.Tensor,
    flair: torch.Tensor | None,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """Every detector's score for (N, 1, H, W) T1 slices (and FLAIR, if the run has it), oriented
    so that higher means tumour (see DETECTORS); without `generator_net`, no residual."""
    out: dict[str, list] = {name: [] for name in DETECTORS}
    for start in range(0, len(t1), batch_size):
        batch = t1[start : start + batch_size]
        maps = discriminator_maps(discriminator, batch).flatten(1)  # (b, h * w)
        brain = (batch > 0).flatten(1).float()
        out["d_mean"].append(-maps.mean(dim=1))
        out["d_p25"].append(-maps.quantile(0.25, dim=1))
        out["t1_mean"].append(-(batch.flatten(1) * brain).sum(1) / brain.sum(1).clamp(min=1))
        out["brain_area"].append(
            brain.sum(1)
        )  # as trained: the resized box of the volume, so proportional to the true area
        if flair is not None:
            f = flair[start : start + batch_size].flatten(1)
            out["flair_mean"].append((f * brain).sum(1) / brain.sum(1).clamp(min=1))
        if generator_net is not None:
            out["residual"].append(inpainting_residual(generator_net, batch))
    return {
        name: torch.cat([v.cpu() for v in values]).numpy().astype(np.float64) for name, values in out.items() if values
    }


# --- the two views ----------------------------------------------------------------------------------


def full_size_channels(
    case: BratsCase, settings: PreprocessConfig, modalities: tuple[str, ...] = ("t1",)
) -> dict[str, np.ndarray]:
    """Some modalities of the case as (Z, H, W) axial slices in display orientation, scaled exactly
    as the training cache scales them (same brain, same percentiles over the slices training
    keeps), and its brain as (Z, H, W) bool under the key "brain"; the case's files are read once."""
    volumes, _ = load_modalities(case)
    brain = axial_slices(brain_mask(case, volumes))  # (Z, H, W)
    out = {
        modality: scaled_slices(axial_slices(volumes[case.modalities.index(modality)]), brain, settings)
        for modality in modalities
    }
    out["brain"] = brain
    return out


def scaled_slices(slices: np.ndarray, brain: np.ndarray, settings: PreprocessConfig) -> np.ndarray:
    """(Z, H, W) slices scaled as the training cache scales them: the brain's percentiles over the
    slices training keeps (at least `min_brain_pixels` of brain) become 0 and 1, background 0."""
    kept = brain.sum(axis=(1, 2)) >= settings.min_brain_pixels  # the slices `preprocess_case` keeps
    offset, gain = percentile_scale(slices[kept][brain[kept]], settings.low_percentile, settings.clip_percentile)
    return normalise(slices, brain, offset, gain)


def full_size_t1(case: BratsCase, settings: PreprocessConfig) -> np.ndarray:
    """The case's T1 at full size, scaled like training (`full_size_channels`)."""
    return full_size_channels(case, settings)["t1"]


def held_out_slices(run: Run, progress: bool = True, modality: str = "t1") -> tuple[torch.Tensor, np.ndarray]:
    """One modality (T1 by default) of every brain slice of the run's test subjects, pre-processed
    as the GAN's input (cropped, resized), with nothing dropped; and whether each slice holds tumour.

    Returns:
        images (N, 1, H, W) in [0, 1], tumour (N,) bool.
    """
    settings = replace(gan_preprocess(run.config), drop_empty_slices=False)
    cache = SliceCache(build_slice_cache(run.cases, run.cache_dir, settings, progress=progress), run.split["test"])
    if modality not in cache.channels:
        raise KitInputError(
            f"The test slices have no {modality} channel (data.modalities is {', '.join(run.config.data.modalities)})."
        )
    channel = cache.channels.index(modality)
    slices = [cache[i] for i in range(len(cache))]  # each slice read once
    images = np.stack([image[channel : channel + 1] for image, _ in slices])
    tumour = np.array([label.any() for _, label in slices])
    return torch.from_numpy(images), tumour


@torch.no_grad()
def slice_scores(
    discriminator: torch.nn.Module,
    cases: list[BratsCase],
    settings: PreprocessConfig,
    batch_size: int = 16,
    progress: bool = True,
    generator_net: torch.nn.Module | None = None,
) -> list[dict]:
    """One row per axial slice of every case at full size: subject, z, positive (any tumour), score
    (mean of the discriminator's map: the paper's), brain (whether the slice shows any brain), the
    position covariates (brain_area in pixels, area_fraction, centre_closeness: `position`), and,
    with `generator_net`, every detector of DETECTORS (columns named after them)."""
    device = next(discriminator.parameters()).device
    rows = []
    for case in tqdm(cases, desc="discriminator sweep", unit="case", disable=not progress):
        with_flair = generator_net is not None and "flair" in case.modalities
        channels = full_size_channels(case, settings, ("t1", "flair") if with_flair else ("t1",))
        slices, area = channels["t1"], channels.pop("brain").sum(axis=(1, 2))
        tumour = axial_slices(load_label(case)).any(axis=(1, 2))
        tensors = {m: torch.from_numpy(v[:, None]).to(device) for m, v in channels.items()}
        scores = slice_detector_scores(
            discriminator, generator_net, t1=tensors["t1"], flair=tensors.get("flair"), batch_size=batch_size
        )
        extra = (
            {k: v for k, v in scores.items() if k not in POSITION_ONLY} if generator_net is not None else {}
        )  # the baselines only when asked for
        for z in range(len(slices)):
            rows.append(
                {
                    "subject": case.case_id,
                    "z": z,
                    "positive": bool(tumour[z]),
                    "score": float(-scores["d_mean"][z]),
                    "brain": bool(slices[z].any()),
                    "brain_area": int(area[z]),
                    **{name: float(values[z]) for name, values in extra.items()},
                }
            )
    return add_position_covariates(rows)


def detector_table(
    rows: list[dict],
    trained: dict[str, np.ndarray] | None,
    trained_tumour: np.ndarray | None,
    central_fraction: float = 0.5,
    samples: int = 1000,
) -> list[dict]:
    """Every detector in both views: `rows` of `slice_scores` (full size) and the scores of
    `slice_detector_scores` on `held_out_slices` (as trained; no centre closeness there, it needs
    the slice index). At full size also what `position.position_table` gives: intervals, AP,
    the position-controlled AUCs and the gain over the position covariates. Missing ones are NaN."""
    positive = np.array([r["positive"] for r in rows])
    with_position = bool(rows) and "area_fraction" in rows[0]  # rows of `slice_scores` have it
    controlled = (
        {row["detector"]: row for row in position_table(rows, DETECTORS, central_fraction, samples)}
        if with_position
        else {}
    )
    table = []
    for name, description in DETECTORS.items():
        full = roc_auc(np.array([r[name] for r in rows]), positive) if rows and name in rows[0] else float("nan")
        as_trained = roc_auc(trained[name], trained_tumour) if trained is not None and name in trained else float("nan")
        extra = {k: v for k, v in controlled.get(name, {}).items() if k not in ("detector", "what", "AUC")}
        table.append(
            {"detector": name, "what": description, "AUC full size": full, "AUC as trained": as_trained, **extra}
        )
    return table


def detector_curves(rows: list[dict]) -> dict[str, dict]:
    """ROC curve (fpr, tpr, auc) of every detector present in `rows` (full size)."""
    positive = np.array([r["positive"] for r in rows])
    curves = {}
    for name in DETECTORS:
        if rows and name in rows[0]:
            scores = np.array([r[name] for r in rows])
            fpr, tpr, _ = roc_curve(scores, positive)
            curves[name] = {"fpr": fpr, "tpr": tpr, "auc": roc_auc(scores, positive)}
    return curves


# --- Table 1 ----------------------------------------------------------------------------------------


def sweep_table(
    scores: np.ndarray, positive: np.ndarray, thresholds: tuple[float, ...] = PAPER_THRESHOLDS
) -> list[dict]:
    """Table 1's rows: "tumour" when score <= threshold. Accuracy, sensitivity and specificity are fractions."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    rows = []
    for threshold in thresholds:
        called = scores <= threshold
        tp, fn = int((called & positive).sum()), int((~called & positive).sum())
        fp, tn = int((called & ~positive).sum()), int((~called & ~positive).sum())
        rows.append(
            {
                "threshold": float(threshold),
                "accuracy": (tp + tn) / len(scores),
                "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
                "specificity": tn / (tn + fp) if tn + fp else float("nan"),
                "TP": tp,
                "FN": fn,
                "FP": fp,
                "TN": tn,
            }
        )
    return rows


def sweep_roc(scores: np.ndarray, positive: np.ndarray) -> dict:
    """The ROC curve of "lower score = tumour" and its AUC."""
    fpr, tpr, thresholds = roc_curve(-np.asarray(scores, float), positive)
    return {"fpr": fpr, "tpr": tpr, "thresholds": -thresholds, "auc": roc_auc(-np.asarray(scores, float), positive)}


def sweep_for_run(
    run: Run, checkpoint: Path | str | None = None, progress: bool = True, baselines: bool = True
) -> list[dict]:
    """`slice_scores` of the run's test subjects with its pre-trained GAN (gan/best.pt); with
    `baselines`, every detector's score too."""
    require_t1(run.config, "The discriminator sweep")
    checkpoint = Path(checkpoint) if checkpoint else run.gan.best
    if not checkpoint.is_file():
        raise KitInputError(
            f"No pre-trained GAN at '{checkpoint}'; run `ganet pretrain-gan --run {run.run_dir}` (or notebook 03) "
            "first."
        )
    generator_net, discriminator, _ = load_gan(checkpoint, run.config.model)
    if torch.cuda.is_available():
        generator_net, discriminator = generator_net.cuda(), discriminator.cuda()
    test = set(run.split["test"])
    cases = [case for case in run.cases if case.case_id in test]
    return slice_scores(
        discriminator,
        cases,
        settings=run.config.preprocess,
        progress=progress,
        generator_net=generator_net if baselines else None,
    )


def detectors_for_run(
    run: Run, rows: list[dict], checkpoint: Path | str | None = None, progress: bool = True
) -> list[dict]:
    """`detector_table` for the run: `rows` from `sweep_for_run`, the as-trained view computed
    here; written to RUN/tables/detectors_auc.csv."""
    checkpoint = Path(checkpoint) if checkpoint else run.gan.best
    generator_net, discriminator, _ = load_gan(checkpoint, run.config.model)
    t1, tumour = held_out_slices(run, progress)
    flair = held_out_slices(run, progress, "flair")[0] if "flair" in run.config.data.modalities else None
    trained = slice_detector_scores(discriminator, generator_net, t1, flair)
    table = detector_table(rows, trained, tumour, run.config.detector.central_fraction)
    atomic_write_csv(run.table_path("detectors_auc.csv"), table)
    return table


def save_sweep(run: Run, rows: list[dict], thresholds: tuple[float, ...] = PAPER_THRESHOLDS) -> list[dict]:
    """Table 1 of `slice_scores` rows; both go to the run's tables (sweep_slices.csv, table1_sweep.csv)."""
    table = sweep_table(np.array([r["score"] for r in rows]), np.array([r["positive"] for r in rows]), thresholds)
    atomic_write_csv(run.table_path("sweep_slices.csv"), rows)
    atomic_write_csv(run.table_path("table1_sweep.csv"), table)
    return table


def format_table(rows: list[dict]) -> str:
    """Table 1's rows as aligned text, percentages as the paper prints them."""
    lines = [
        f"{'threshold':>9}  {'accuracy':>8}  {'sensitivity':>11}  {'specificity':>11}  {'TP':>6}  {'FN':>6}  "
        f"{'FP':>6}  {'TN':>6}"
    ]
    for r in rows:
        lines.append(
            f"{r['threshold']:>9.3g}  {r['accuracy']:>8.2%}  {r['sensitivity']:>11.2%}  {r['specificity']:>11.2%}  "
            f"{r['TP']:>6}  {r['FN']:>6}  {r['FP']:>6}  {r['TN']:>6}"
        )
    return "\n".join(lines)


# --- the GAN's normals: where they lie, and what the discriminator says of unseen ones -----------


@torch.no_grad()
def normal_slices(
    run: Run, held_out_only: bool = False, discriminator: torch.nn.Module | None = None, progress: bool = True
) -> list[dict]:
    """One row per brain slice of the GAN's normal subjects at full size: subject, z, normal
    (whether the GAN takes it as a normal slice), held_out (a GAN validation subject, never trained
    on), the position covariates and, with a `discriminator`, its mean map on the normal slices
    (`score`, "probability of normal"), scaled like training.

    NFBS: every brain slice of the subjects (at most `detector.position_subjects` of them);
    tumour-free-slices: the training subjects' slices the GAN uses (no tumour, `gan.normal_margin`
    slices from any). `held_out_only`: only the GAN's validation subjects.
    """
    config = run.config
    held_out = set(normal_validation_ids(run))
    if config.gan.normals == "tumour-free-slices":
        train = set(run.split["train"])
        sources = brats_sources([c for c in run.cases if c.case_id in train], only="t1")
    else:
        sources = nfbs_sources(run.normals)
    sources = (
        [s for s in sources if s.subject_id in held_out]
        if held_out_only
        else sorted(sources, key=lambda s: (s.subject_id not in held_out, s.subject_id))[
            : config.detector.position_subjects
        ]
    )
    device = next(discriminator.parameters()).device if discriminator is not None else "cpu"
    rows = []
    for source in tqdm(sources, desc="normal slices", unit="subject", disable=not progress):
        volumes, label, brain_volume = source.read()
        brain = axial_slices(brain_volume)
        area = brain.sum(axis=(1, 2))
        candidates = np.flatnonzero(area >= config.preprocess.min_brain_pixels)
        kept = (
            tumour_free_slices(axial_slices(label), candidates, config.gan.normal_margin)
            if label is not None
            else candidates
        )
        covariates = add_position_covariates(
            [{"subject": source.subject_id, "z": z, "brain_area": int(area[z])} for z in range(len(area))]
        )
        scores = {}
        if discriminator is not None and len(kept):
            t1 = scaled_slices(axial_slices(volumes[0].astype(np.float32)), brain, config.preprocess)[kept]
            scores = dict(
                zip(
                    kept.tolist(),
                    discriminator_patch_means(discriminator, torch.from_numpy(t1[:, None]).to(device))
                    .cpu()
                    .numpy()
                    .tolist(),
                )
            )
        normal = set(kept.tolist())
        for z in candidates.tolist():
            rows.append(
                {
                    **covariates[z],
                    "normal": z in normal,
                    "held_out": source.subject_id in held_out,
                    **({"score": scores[z]} if z in scores else {}),
                }
            )
    return rows


def domain_shift_for_run(
    run: Run, sweep_rows: list[dict], checkpoint: Path | str | None = None, progress: bool = True
) -> dict[str, np.ndarray]:
    """The discriminator's mean map ("normal" probability) at full size on three groups of brain
    slices: the GAN's held-out normal subjects (never trained on), the test subjects' tumour-free
    slices and their tumour slices (from `sweep_rows`)."""
    checkpoint = Path(checkpoint) if checkpoint else run.gan.best
    _, discriminator, _ = load_gan(checkpoint, run.config.model)
    normals = [
        r for r in normal_slices(run, held_out_only=True, discriminator=discriminator, progress=progress) if r["normal"]
    ]
    with_brain = [r for r in sweep_rows if r["brain_area"] >= run.config.preprocess.min_brain_pixels]
    return {
        "held-out normals (never trained on)": np.array([r["score"] for r in normals]),
        "test subjects, tumour-free slices": np.array([r["score"] for r in with_brain if not r["positive"]]),
        "test subjects, tumour slices": np.array([r["score"] for r in with_brain if r["positive"]]),
    }
