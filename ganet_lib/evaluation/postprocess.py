"""Post-processing of predicted label maps, chosen on the run's validation subjects.

A raw arg-max map holds stray components: each is a false-positive lesion for the lesion-wise
BraTS scores. The field removes them with a rule chosen on validation cases, never on the test
set (SPEC section 8):

- nnU-Net (Isensee et al., Nature Methods 2021) checks on its validation predictions whether
  "keep only the largest connected component" improves Dice and applies it only then;
- nnU-Net's BraTS 2020 entry (Isensee et al., arXiv 2011.00848) relabels a subject's predicted
  enhancing tumour as NCR/NET when its volume is below a threshold chosen on validation, because
  an empty ET truth scores 1 only for an empty ET prediction.

The kit offers three rules on the whole tumour (labels of the scheme's WT region, 26-connected
components): `none`, `largest` (keep the largest component), `min-volume` (remove components
smaller than a volume in mm^3, so that a threshold transfers across voxel sizes); and, for BraTS
labels, an ET volume threshold. `choose` picks them on validation subjects by the `brats`
protocol (mean over subjects and regions of the whole-volume and the lesion-wise Dice) and keeps
"none" unless a rule scores strictly higher. Real tumours can be multifocal: a rule that deletes
a true second lesion loses that lesion's Dice on validation and is not chosen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ganet_lib.data.labels import BRATS, LabelScheme
from ganet_lib.errors import KitInputError
from ganet_lib.evaluation.metrics import brats_scores, label_components
from ganet_lib.files import atomic_write_text
from ganet_lib.run import TrainingFolder

WT_RULES = ("none", "largest", "min-volume")
# Candidate thresholds, mm^3. Their grids are the kit's choice (the field tunes on validation
# without a published grid): roughly geometric from a few voxels of BraTS's 1 mm^3 to a large
# lesion; 50 mm^3 is also the official evaluation's smallest counted lesion.
MIN_VOLUME_GRID_MM3 = (10.0, 30.0, 50.0, 100.0, 300.0, 1000.0, 3000.0)
ET_THRESHOLD_GRID_MM3 = (50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0)
NCR_LABEL = 1  # NCR/NET: where an ET below the threshold goes (the BraTS 2020 entry's rule)
ET_LABEL = 4


@dataclass(frozen=True)
class PostProcessing:
    """A post-processing rule: what to remove from the whole tumour, and the ET volume threshold."""

    wt_rule: str = "none"  # "none", "largest" (keep the largest component) or "min-volume"
    wt_min_mm3: float = 0.0  # with "min-volume": whole-tumour components below this volume are removed
    et_min_mm3: float = 0.0  # a subject's ET below this volume becomes NCR/NET; 0: off

    def __post_init__(self):
        if self.wt_rule not in WT_RULES:
            raise KitInputError(f"Unknown whole-tumour rule '{self.wt_rule}'; use one of {', '.join(WT_RULES)}.")

    @property
    def is_identity(self) -> bool:
        return self.wt_rule == "none" and self.et_min_mm3 <= 0

    def describe(self) -> str:
        parts = {
            "none": [],
            "largest": ["keep the largest whole-tumour component"],
            "min-volume": [f"remove whole-tumour components below {self.wt_min_mm3:g} mm^3"],
        }[self.wt_rule]
        if self.et_min_mm3 > 0:
            parts.append(f"ET below {self.et_min_mm3:g} mm^3 per subject becomes NCR/NET")
        return "; ".join(parts) if parts else "none (the raw arg-max)"

    def apply(self, labels: np.ndarray, spacing: tuple[float, float, float], scheme: LabelScheme = BRATS) -> np.ndarray:
        """The rule applied to a (X, Y, Z) label map in the scheme's labels; returns a new array."""
        labels = np.array(labels, copy=True)
        voxel_mm3 = float(np.prod(spacing))
        if self.wt_rule != "none":
            components, count = label_components(np.isin(labels, scheme.regions["WT"]))
            if count:
                volumes = np.bincount(components.ravel(), minlength=count + 1) * voxel_mm3  # index 0: background
                if self.wt_rule == "largest":
                    keep = np.zeros(count + 1, bool)
                    keep[1 + int(np.argmax(volumes[1:]))] = True
                else:
                    keep = volumes >= self.wt_min_mm3
                keep[0] = True  # background stays what it is
                labels[~keep[components]] = 0
        if self.et_min_mm3 > 0 and "ET" in scheme.regions:
            enhancing = labels == ET_LABEL
            if 0 < enhancing.sum() * voxel_mm3 < self.et_min_mm3:
                labels[enhancing] = NCR_LABEL
        return labels


IDENTITY = PostProcessing()


def selection_score(scores: dict) -> float:
    """The choice's criterion for one subject: the mean over regions of (Dice + lesion-wise Dice) / 2."""
    return float(np.mean([(s.dice + s.lw_dice) / 2.0 for s in scores.values()]))


@dataclass(frozen=True)
class Candidate:
    rule: PostProcessing
    score: float  # mean selection_score over the validation subjects
    region_means: dict  # region -> {"dice": ..., "lw_dice": ...}, means over the subjects


def score_rule(
    rule: PostProcessing, cases: list[tuple[np.ndarray, np.ndarray, tuple]], scheme: LabelScheme, memo: dict
) -> Candidate:
    """Candidate of `rule` on validation (prediction, truth, spacing) triples. `memo` keeps the scores
    of every post-processed map already scored (by content), since many thresholds change nothing."""
    per_subject = []
    for index, (prediction, truth, spacing) in enumerate(cases):
        processed = rule.apply(prediction, spacing, scheme)
        key = (index, hashlib.sha1(processed.tobytes()).hexdigest())
        if key not in memo:
            memo[key] = brats_scores(processed, truth, spacing, scheme.regions)
        per_subject.append(memo[key])
    means = {
        region: {
            "dice": float(np.mean([s[region].dice for s in per_subject])),
            "lw_dice": float(np.mean([s[region].lw_dice for s in per_subject])),
        }
        for region in scheme.regions
    }
    return Candidate(rule, float(np.mean([selection_score(s) for s in per_subject])), means)


def choose(
    cases: list[tuple[np.ndarray, np.ndarray, tuple]], scheme: LabelScheme = BRATS
) -> tuple[PostProcessing, list[Candidate]]:
    """The rule that scores best on validation subjects, and every candidate tried.

    Two greedy steps, as nnU-Net decides one step after another: (1) the whole-tumour rule
    (none, largest, or min-volume over MIN_VOLUME_GRID_MM3); (2) with it, the ET threshold over
    ET_THRESHOLD_GRID_MM3 (BraTS labels only). Each step keeps what it had unless a candidate
    scores strictly higher; among equal scores the gentler rule wins (none, then the smallest
    volume, then largest), so a rule is applied only when validation shows that it helps.

    Args:
        cases: (raw prediction, truth, spacing in mm) per validation subject, label maps in the scheme's labels.
    """
    if not cases:
        raise ValueError("choosing a post-processing needs at least one validation subject")
    memo: dict = {}
    tried = [score_rule(IDENTITY, cases, scheme, memo)]
    best = tried[0]
    wt_candidates = [PostProcessing("min-volume", v) for v in MIN_VOLUME_GRID_MM3] + [PostProcessing("largest")]
    for rule in wt_candidates:  # step 1, gentlest first
        tried.append(score_rule(rule, cases, scheme, memo))
        if tried[-1].score > best.score + 1e-12:
            best = tried[-1]
    if "ET" in scheme.regions:
        wt_best = best
        for threshold in ET_THRESHOLD_GRID_MM3:  # step 2, smallest threshold first
            rule = PostProcessing(wt_best.rule.wt_rule, wt_best.rule.wt_min_mm3, threshold)
            tried.append(score_rule(rule, cases, scheme, memo))
            if tried[-1].score > best.score + 1e-12:
                best = tried[-1]
    return best.rule, tried


# ---------------------------------------------------------------------------------------------
# The record beside the checkpoint: seg-<variant>/postprocess.json
# ---------------------------------------------------------------------------------------------


def file_digest(path: Path | str) -> str:
    """sha256 of a file (the checkpoint a choice was made for); computed once per version of the file."""
    stat = Path(path).stat()
    return _digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:  # size and time: a rewritten file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_path(checkpoint: Path | str) -> Path:
    """Where the choice for `checkpoint` is kept: beside it (`run.TrainingFolder.postprocess_record`)."""
    return TrainingFolder.of(checkpoint).postprocess_record


def write_record(
    checkpoint: Path | str, rule: PostProcessing, tried: list[Candidate], validation_ids: list[str]
) -> dict:
    """Save the choice beside `checkpoint` (`record_path`) and return it: the rule, the checkpoint's
    digest, the validation subjects and the scores of every candidate (the first one is "none")."""
    record = {
        "rule": asdict(rule),
        "description": rule.describe(),
        "checkpoint": Path(checkpoint).name,
        "checkpoint_sha256": file_digest(checkpoint),
        "validation_subjects": list(validation_ids),
        "criterion": "mean over validation subjects and regions of (whole-volume Dice + lesion-wise Dice) / 2, brats "
        "protocol",
        "candidates": [
            {"rule": asdict(c.rule), "description": c.rule.describe(), "score": c.score, "regions": c.region_means}
            for c in tried
        ],
    }
    atomic_write_text(record_path(checkpoint), json.dumps(record, indent=1))
    return record


def read_record(checkpoint: Path | str) -> dict | None:
    """The record beside `checkpoint`, or None when there is none or it was made for another checkpoint."""
    path = record_path(checkpoint)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        PostProcessing(**record["rule"])
    except (ValueError, KeyError, TypeError) as exc:
        raise KitInputError(
            f"'{path}' is not a post-processing record ({exc}); delete it and run `ganet train-seg` again to choose "
            "anew."
        ) from exc
    if record.get("checkpoint_sha256") != file_digest(checkpoint):
        return None
    return record


def rule_of(record: dict | None) -> PostProcessing:
    return PostProcessing(**record["rule"]) if record else IDENTITY


def chosen_and_raw(record: dict) -> tuple[dict, dict]:
    """The candidate entries of the chosen rule and of "none" in a record."""
    candidates = record["candidates"]
    chosen = next(c for c in candidates if c["rule"] == record["rule"])
    return chosen, candidates[0]


def candidates_table(record: dict) -> tuple[list[str], list[list]]:
    """Header and rows of every candidate of a record (validation means), the chosen one marked."""
    regions = list(record["candidates"][0]["regions"])
    header = (
        ["Rule", "Criterion"] + [f"{kind} {region}" for region in regions for kind in ("Dice", "LW Dice")] + ["Chosen"]
    )
    rows = [
        [c["description"], round(c["score"], 4)]
        + [round(c["regions"][r][k], 4) for r in regions for k in ("dice", "lw_dice")]
        + ["yes" if c["rule"] == record["rule"] else ""]
        for c in record["candidates"]
    ]
    return header, rows


def summary_sentence(record: dict | None, variant: str) -> str:
    """One line: the rule of a variant, where it was chosen, and what it scored against the raw arg-max."""
    if record is None:
        return f"{variant}: no post-processing recorded for its checkpoint (the raw arg-max is used)."
    chosen, raw = chosen_and_raw(record)

    def wt(candidate: dict) -> str:
        return f"WT Dice {candidate['regions']['WT']['dice']:.3f}, LW Dice {candidate['regions']['WT']['lw_dice']:.3f}"

    return (
        f"{variant}: **{record['description']}**, chosen on {len(record['validation_subjects'])} validation subject(s) "
        f"({', '.join(record['validation_subjects'])}): criterion {chosen['score']:.4f} against {raw['score']:.4f} "
        "for the raw arg-max "
        f"({wt(chosen)} against {wt(raw)})."
    )
