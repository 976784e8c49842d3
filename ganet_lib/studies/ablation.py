"""The ablation with statistics: is the adversarial feedback worth anything on this data?

`ganet ablation`, notebook 06 and the report. Seed k trains the GAN with `gan.seed + k` and both
U-Nets with `seg.seed + k`: model initialisation, data order, hole and noise draws change with it;
the data, the train/test split and the validation hold-outs (`gan.val_seed`, `seg.val_seed`) do
not. Seed 0 is the run itself (`RUN/gan`, `RUN/seg-*`, `RUN/metrics`); seed k > 0 lives in
`RUN/ablation/seed<k>/`, which shares the run's data and caches through symbolic links. The
`ganet` and `unet` U-Nets of one seed start from the same weights and see the same batches, so
the comparison is paired by subject and seed.

Statistics (per region, `brats` protocol, whole-volume Dice of the post-processed predictions, and
the same of the raw arg-max beside them): the mean over seeds of each
variant's test-set mean, with its sd over seeds; and the paired difference ganet - unet, averaged
over subjects and seeds, with a 95 % percentile interval from a two-way bootstrap that resamples
subjects and seeds independently (both are random samples: the test subjects of a population, the
seeds of the training's randomness; resampling only subjects would hide the seed-to-seed spread).
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganet_lib.config import VARIANTS, ExperimentConfig, commit_description
from ganet_lib.data.labels import scheme_for
from ganet_lib.evaluation.evaluate import REGION_ORDER, evaluate_cases, read_rows, write_rows
from ganet_lib.evaluation.postprocess import read_record, rule_of
from ganet_lib.evaluation.predict import choose_postprocessing, predict_cases
from ganet_lib.files import atomic_write_csv, atomic_write_text
from ganet_lib.method.networks import load_segmentation
from ganet_lib.method.train_gan import pretrain_gan_for_run
from ganet_lib.method.train_seg import train_segmentation_for_run
from ganet_lib.run import Run, RunLayout, run_in_folder

# 10,000 resamples (position.py draws 1,000): a resample here is a mean of a few hundred numbers,
# so the finer interval ends cost nothing; there each resample recomputes ROC curves.
BOOTSTRAP_SAMPLES = 10_000
CONFIDENCE = 0.95


def seed_folder(run: Run, seed: int) -> Path:
    """Where ablation seed `seed` lives: the run folder itself for 0, else RUN/ablation/seed<k>."""
    return run.seed_dir(seed)


def seed_run(run: Run, seed: int) -> Run:
    """The run of ablation seed `seed` (0: `run` itself), set up on first use."""
    if seed == 0:
        return run
    folder = seed_folder(run, seed)
    folder.mkdir(parents=True, exist_ok=True)
    run.cache_dir.mkdir(parents=True, exist_ok=True)  # made on first use: link it even before then
    member = RunLayout(folder)
    for target, link in (
        (run.cache_dir, member.cache_dir),
        (run.synthetic_dir, member.synthetic_dir),
    ):  # the same data and caches
        if target.exists() and not link.is_symlink():
            link.symlink_to(Path("..") / ".." / target.name, target_is_directory=True)
    for source, copy in (
        (run.split_file, member.split_file),
        (run.labels_file, member.labels_file),
    ):  # the same split and label survey
        if source.is_file():
            atomic_write_text(copy, source.read_text())
    config = seed_config(run, seed)
    atomic_write_text(member.config_file, config.to_json())
    return run_in_folder(config, folder)


def seed_config(run: Run, seed: int) -> ExperimentConfig:
    """The run's config with the seeds of ablation seed `seed`."""
    config = run.config
    return replace(
        config,
        gan=replace(config.gan, seed=config.gan.seed + seed),
        seg=replace(config.seg, seed=config.seg.seed + seed),
    )


def seeds_in(run: Run) -> list[int]:
    """The seeds whose `brats` metrics of both variants exist in the run folder, made with the
    run's present settings (a seed folder left from other settings is ignored until retrained)."""
    found = [0] + sorted(int(p.name[4:]) for p in run.ablation_dir.glob("seed*") if p.name[4:].isdigit())

    def current(seed: int) -> bool:
        saved = RunLayout(seed_folder(run, seed)).config_file
        return seed == 0 or (saved.is_file() and saved.read_text() == seed_config(run, seed).to_json())

    return [k for k in found if current(k) and all(metrics_path(run, k, v).is_file() for v in VARIANTS)]


def metrics_path(run: Run, seed: int, variant: str, raw: bool = False) -> Path:
    """The seed's `brats` metrics of a variant: post-processed predictions, or the raw arg-max."""
    return RunLayout(seed_folder(run, seed)).metrics_file(variant, "brats", raw)


def train_and_score_seed(run: Run, seed: int, progress: bool = True) -> dict[str, Path]:
    """Train (or reuse) the GAN and both U-Nets of one seed, segment the test subjects and score
    them with the `brats` protocol, post-processed (each variant's rule chosen on the validation
    subjects of its own seed) and raw; returns each variant's post-processed metrics CSV."""
    member = seed_run(run, seed)
    test_cases = [c for c in member.cases if c.case_id in set(member.split["test"])]
    pretrain_gan_for_run(member, resume=True, progress=False)  # each epoch still prints one line
    written = {}
    for variant in VARIANTS:
        result = train_segmentation_for_run(member, variant, resume=True, progress=False)
        choose_postprocessing(member, variant, progress=False)
        path, raw_path = metrics_path(run, seed, variant), metrics_path(run, seed, variant, raw=True)
        record = member.seg(variant).postprocess_record
        newest_input = max(
            result.best_checkpoint.stat().st_mtime_ns, record.stat().st_mtime_ns if record.is_file() else 0
        )
        if all(p.is_file() and p.stat().st_mtime_ns > newest_input for p in (path, raw_path)):
            written[variant] = path  # scored after the checkpoint and its post-processing were written: reuse
            continue
        model, config, _, _ = load_segmentation(result.best_checkpoint)
        predictions, raw_predictions = member.predictions_dir(variant), member.predictions_dir(variant, raw=True)
        rule = rule_of(read_record(result.best_checkpoint))
        predict_cases(
            model,
            test_cases,
            out_dir=predictions,
            settings=config.preprocess,
            progress=False,
            scheme=scheme_for(config.data.labels),
            postprocessing=rule,
            raw_dir=raw_predictions,
        )
        write_rows(raw_path, evaluate_cases(raw_predictions, test_cases, "brats", progress=False))
        written[variant] = write_rows(path, evaluate_cases(predictions, test_cases, "brats", progress=False))
        if progress:
            print(f"   seed {seed} {variant}: {len(test_cases)} test subjects scored -> {path}", flush=True)
    return written


def run_ablation(run: Run, seeds: int, progress: bool = True) -> list[dict]:
    """Seeds 0 .. seeds-1 of `run` (each trained only if missing), then the statistics
    (`ablation_summary`), written to tables/ablation_summary.csv and tables/ablation_seeds.csv."""
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    for seed in range(seeds):
        if progress:
            print(
                f"== seed {seed} of 0..{seeds - 1} ({'the run itself' if seed == 0 else seed_folder(run, seed)})",
                flush=True,
            )
        train_and_score_seed(run, seed, progress)
    return write_ablation(run, list(range(seeds)))


def seed_scores(run: Run, seeds: list[int] | None = None, raw: bool = False) -> dict[str, np.ndarray]:
    """Whole-volume Dice per region as arrays (variant, subject, seed): {region: array}, over the
    subjects every seed scored, of the post-processed predictions (`raw`: of the arg-max). Regions
    the labels lack (whole-tumour masks: TC, ET) stay out."""
    seeds = seeds_in(run) if seeds is None else seeds
    tables = {(v, k): read_rows(metrics_path(run, k, v, raw)) for v in VARIANTS for k in seeds}
    first = tables[VARIANTS[0], seeds[0]]
    subjects = sorted({row["subject"] for row in first})
    regions = [r for r in REGION_ORDER if any(row["region"] == r and row["dice"] is not None for row in first)]
    scores = {}
    for region in regions:
        values = np.full((len(VARIANTS), len(subjects), len(seeds)), np.nan)
        for (variant, seed), rows in tables.items():
            for row in rows:
                if row["region"] == region and row["subject"] in subjects and row["dice"] is not None:
                    values[VARIANTS.index(variant), subjects.index(row["subject"]), seeds.index(seed)] = row["dice"]
        if np.isnan(values).any():
            raise ValueError(
                f"the {region} Dice of some subject is missing for some seed; rerun `ganet ablation` to rescore the "
                "seeds"
            )
        scores[region] = values
    return scores


def paired_interval(
    differences: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a (subjects, seeds) array of paired differences and its two-way bootstrap
    percentile interval (subjects and seeds resampled independently, with replacement)."""
    n_subjects, n_seeds = differences.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_subjects, size=(samples, n_subjects))
    columns = rng.integers(0, n_seeds, size=(samples, n_seeds))
    # mean over the resampled grid = mean over rows of the row-resampled means over resampled columns
    per_subject = differences[rows]  # (samples, n_subjects, n_seeds)
    means = np.take_along_axis(per_subject, np.broadcast_to(columns[:, None, :], per_subject.shape), axis=2).mean(
        axis=(1, 2)
    )
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(differences.mean()), float(low), float(high)


def verdict(low: float, high: float) -> str:
    """'better' when the whole interval is above 0, 'worse' when below, else 'not distinguishable'.
    With one seed this is about that seed's pair of networks only (see `sentence`)."""
    return "better" if low > 0 else "worse" if high < 0 else "not distinguishable"


def ablation_summary(scores: dict[str, np.ndarray]) -> list[dict]:
    """One row per region: each variant's mean and sd over seeds of its test-set mean Dice; the
    paired difference ganet - unet with its interval and verdict."""
    rows = []
    for region, values in scores.items():
        per_seed = values.mean(axis=1)  # (variant, seed): test-set mean per seed
        sd = per_seed.std(axis=1, ddof=1) if per_seed.shape[1] > 1 else np.full(len(VARIANTS), np.nan)
        difference, low, high = paired_interval(values[0] - values[1])
        rows.append(
            {
                "region": region,
                "subjects": values.shape[1],
                "seeds": values.shape[2],
                "ganet_mean": float(per_seed[0].mean()),
                "ganet_sd": float(sd[0]),
                "unet_mean": float(per_seed[1].mean()),
                "unet_sd": float(sd[1]),
                "difference": difference,
                "ci_low": low,
                "ci_high": high,
                "verdict": verdict(low, high),
            }
        )
    return rows


def sentence(summary: list[dict]) -> str:
    """The plain verdict on the whole tumour (the region every label scheme has), with its numbers."""
    wt = next(row for row in summary if row["region"] == "WT")
    subjects, seeds = wt["subjects"], wt["seeds"]
    size = f"{subjects} test subject{'s' if subjects > 1 else ''} x {seeds} seed{'s' if seeds > 1 else ''}"
    numbers = (
        f"WT Dice ganet - unet {wt['difference']:+.3f}, {CONFIDENCE:.0%} CI [{wt['ci_low']:+.3f}, "
        f"{wt['ci_high']:+.3f}], "
        f"paired over {size}"
    )
    if wt["seeds"] == 1:  # the interval leaves out the training's randomness: no verdict on the method
        found = "no difference" if wt["verdict"] == "not distinguishable" else f"GANet-Seg {wt['verdict']}"
        return (
            f"One training seed only: on these test subjects this seed's pair shows {found} ({numbers}). "
            "The interval covers only the choice of test subjects, not the seed-to-seed variation of training, "
            "so it cannot say whether GANet-Seg is better at this size; `ganet ablation --seeds 5` measures that."
        )
    if wt["verdict"] == "not distinguishable":
        return f"GANet-Seg and the plain U-Net are not distinguishable at this size ({numbers})."
    return f"GANet-Seg is {wt['verdict']} than the plain U-Net at this size ({numbers})."


def summary_table(summary: list[dict]) -> tuple[list[str], list[list]]:
    """Header and rows of the summary as the CLI, notebook 06, the report and the results file show it."""

    def spread(mean: float, sd: float | None) -> str:
        return f"{mean:.3f}" if sd is None or sd != sd else f"{mean:.3f} +- {sd:.3f}"

    header = [
        "Region",
        "Subjects x seeds",
        "ganet Dice (mean +- sd over seeds)",
        "unet Dice",
        "ganet - unet (paired)",
        f"{CONFIDENCE:.0%} CI",
        "GANet-Seg is",
    ]
    rows = [
        [
            r["region"],
            f"{r['subjects']} x {r['seeds']}",
            spread(r["ganet_mean"], r["ganet_sd"]),
            spread(r["unet_mean"], r["unet_sd"]),
            f"{r['difference']:+.3f}",
            f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]",
            r["verdict"] + (" (this seed, these subjects)" if r["seeds"] == 1 else ""),
        ]
        for r in summary
    ]
    return header, rows


def training_seconds(run: Run, seed: int) -> dict[str, float]:
    """Seconds the seed's GAN and U-Nets trained, summed from their per-epoch histories (metrics.csv)."""
    folder = RunLayout(seed_folder(run, seed))
    seconds = {}
    for name, history in (("gan", folder.gan.history), *((v, folder.seg(v).history) for v in VARIANTS)):
        if history.is_file():
            with open(history, newline="") as handle:
                seconds[name] = round(sum(float(row["seconds"]) for row in csv.DictReader(handle)), 1)
    return seconds


def write_ablation(run: Run, seeds: list[int] | None = None) -> list[dict]:
    """tables/ablation_seeds.csv (each seed's test-set mean Dice per variant and region),
    tables/ablation_summary.csv and tables/ablation.json (the summary and its sentence)."""
    seeds = seeds_in(run) if seeds is None else seeds
    scores = seed_scores(run, seeds)
    per_seed = [
        {"seed": seed, "variant": variant, "region": region, "dice": float(values[i, :, j].mean())}
        for region, values in scores.items()
        for i, variant in enumerate(VARIANTS)
        for j, seed in enumerate(seeds)
    ]
    atomic_write_csv(run.table_path("ablation_seeds.csv"), per_seed)
    summary = ablation_summary(scores)
    atomic_write_csv(run.table_path("ablation_summary.csv"), summary)
    # The same statistics of the raw arg-max, beside them, when every seed has its raw scores.
    raw = (
        ablation_summary(seed_scores(run, seeds, raw=True))
        if all(metrics_path(run, k, v, True).is_file() for v in VARIANTS for k in seeds)
        else []
    )
    if raw:
        atomic_write_csv(run.table_path("ablation_summary_raw.csv"), raw)

    def readable(rows):  # NaN -> null
        return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()} for row in rows]

    atomic_write_text(
        run.table_path("ablation.json"),
        json.dumps(
            {
                "seeds": seeds,
                "summary": readable(summary),
                "sentence": sentence(summary),
                "summary_raw": readable(raw),
                "commit": commit_description(),
                "training_seconds": {str(k): training_seconds(run, k) for k in seeds},
            },
            indent=1,
        ),
    )
    return summary


def read_ablation(run_dir: Path) -> dict | None:
    """tables/ablation.json of a run folder, or None when it was not written."""
    path = RunLayout(Path(run_dir)).tables_dir / "ablation.json"
    return json.loads(path.read_text()) if path.is_file() else None
