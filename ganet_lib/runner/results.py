"""`ganet results`: a run's measured figures as a short markdown file the README links to.

    ./run_all.sh && ganet results --run runs/default --out docs/results-default.md

Every number comes from a file the run left (run_summary.json, tables/*.csv, metrics/*.csv,
tables/ablation.json, gan/metrics.csv); the header says when, from which commit and on which
machine. Re-measuring the README's figures is those two commands, so they cannot drift from the code.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from ganet_lib.config import VARIANTS, commit_description
from ganet_lib.evaluation.evaluate import read_rows, region_means
from ganet_lib.evaluation.postprocess import read_record, summary_sentence
from ganet_lib.files import atomic_write_text
from ganet_lib.run import RunLayout, open_run
from ganet_lib.runner.report import machine_description, markdown_table, read_csv
from ganet_lib.studies.ablation import read_ablation, summary_table
from ganet_lib.studies.position import detector_summary, read_detector_table, takeaway


def _timing(run_dir: Path) -> str:
    path = run_dir / "run_summary.json"
    if not path.is_file():
        return "No `run_summary.json`: the notebooks were not run by `run_all.sh`."
    summary = json.loads(path.read_text())
    parts = ", ".join(f"{t['notebook'][:2]}: {t['seconds']:.0f} s" for t in summary["timings"])
    minutes, seconds = divmod(round(summary["wall_seconds"]), 60)

    def listed(names: list[str]) -> str:  # the slice caches counted, not named by their hashes
        caches = [n for n in names if n.startswith("cache ")]
        return (
            ", ".join([n for n in names if n not in caches] + ([f"{len(caches)} slice cache(s)"] if caches else []))
            or "nothing"
        )

    built, reused = listed(summary.get("rebuilt", [])), listed(summary.get("reused", []))
    made = f"Run made at commit {summary['commit']}. " if summary.get("commit") else ""
    return (
        f"{made}**{minutes} min {seconds:02d} s** wall for the notebooks ({parts}); largest notebook kernel "
        f"{summary['peak_mb']:.0f} MB resident. Built in this run: {built}; reused: {reused}."
    )


def _detectors(run_dir: Path) -> str:
    tables = RunLayout(run_dir).tables_dir
    rows = read_detector_table(tables / "detectors_auc.csv")
    sweep = read_csv(tables / "table1_sweep.csv")
    slices = read_csv(tables / "sweep_slices.csv")
    if not rows:
        return "Not computed (notebook 05 / `ganet sweep`)."
    positive = sum(s["positive"] == "True" for s in slices)
    text = (
        f"{len(slices)} full-size test slices, {positive} with tumour. Higher score = tumour; full size (the authors' "
        "protocol) "
        "unless said; 95 % intervals from a bootstrap over test subjects; AP's chance level is the share of tumour "
        "slices:\n\n"
    )
    text += markdown_table(*detector_summary(rows)) + f"\n\n{takeaway(rows)}"
    if sweep:
        text += (
            "\n\nAt the paper's thresholds (mean D map <= t = tumour): "
            + "; ".join(
                f"t = {r['threshold']}: accuracy {float(r['accuracy']):.1%}, sensitivity {float(r['sensitivity']):.1%}"
                for r in sweep
            )
            + "."
        )
    return text


def _feedback(run_dir: Path) -> str:
    rows = read_csv(RunLayout(run_dir).tables_dir / "04_feedback_response.csv")
    if not rows:
        return "Not computed (notebook 04)."
    line = {mode: ", ".join(f"{float(r['l_adv']):.3f}" for r in rows if r["mode"] == mode) for mode in ("miss", "over")}
    fractions = ", ".join(f"{float(r['fraction']):.0%}" for r in rows if r["mode"] == "miss")
    return (
        f"L_adv (Eq. 7) of the true masks of {rows[0]['slices']} validation slices with {fractions} of the tumour "
        f"missed: {line['miss']}; grown into normal tissue by as much: {line['over']}."
    )


def _segmentation(run_dir: Path) -> str:
    layout = RunLayout(run_dir)
    body, rules = [], []
    for variant in VARIANTS:
        for raw, kind in ((False, "post-processed"), (True, "raw arg-max")):
            path = layout.metrics_file(variant, "brats", raw)
            if not path.is_file():
                continue
            rows = read_rows(path)
            means, subjects = region_means(rows), len({row["subject"] for row in rows})
            body.append(
                [variant, kind, subjects]
                + [f"{means[r]['dice']:.3f}" if "dice" in means.get(r, {}) else "" for r in ("WT", "TC", "ET")]
                + [f"{means['WT']['hd95']:.1f}", f"{means['WT']['lw_dice']:.3f}"]
                + [f"{means[r]['lw_dice']:.3f}" if "lw_dice" in means.get(r, {}) else "" for r in ("TC", "ET")]
            )
        if layout.seg(variant).best.is_file():
            rules.append("- Post-processing of " + summary_sentence(read_record(layout.seg(variant).best), variant))
    if not body:
        return "Not computed (notebook 06)."
    return markdown_table(
        [
            "Variant",
            "Predictions",
            "Test subjects",
            "Dice WT",
            "Dice TC",
            "Dice ET",
            "HD95 WT (mm)",
            "LW Dice WT",
            "LW Dice TC",
            "LW Dice ET",
        ],
        body,
    ) + ("\n\n" + "\n".join(rules) if rules else "")


def _gan(run_dir: Path) -> str:
    rows = read_csv(RunLayout(run_dir).gan.history)
    if not rows:
        return "Not trained in this run folder."
    best = min(rows, key=lambda r: float(r["val_hole_l1"]))
    return (
        f"{len(rows)} epochs; best validation hole L1 {float(best['val_hole_l1']):.3f} (epoch {best['epoch']}) "
        f"vs {float(best['val_mean_fill_l1']):.3f} for filling the hole with the mean intensity."
    )


def write_results(run_dir: Path | str, out: Path | str) -> Path:
    """Write the measured figures of the run in `run_dir` to `out` (markdown); returns `out`."""
    run_dir, out = Path(run_dir), Path(out)
    run = open_run(run_dir)
    ablation = read_ablation(run_dir)
    if ablation:
        header, rows = summary_table(ablation["summary"])
        comparison = (
            f"Seed{'s' if len(ablation['seeds']) > 1 else ''} {', '.join(map(str, ablation['seeds']))}; tables "
            f"written at commit {ablation.get('commit', 'not recorded')}.\n\n"
            + markdown_table(header, rows)
            + f"\n\n{ablation['sentence']}"
        )
        if ablation.get("summary_raw"):
            comparison += "\n\nThe same for the raw arg-max:\n\n" + markdown_table(
                *summary_table(ablation["summary_raw"])
            )
        seconds = ablation.get("training_seconds", {})
        if seconds:
            comparison += (
                "\n\nTraining time per seed (s, summed from the per-epoch histories; GAN / ganet / unet): "
                + "; ".join(
                    f"seed {k}: {' / '.join(f'{v[n]:.0f}' for n in ('gan', 'ganet', 'unet') if n in v)}"
                    for k, v in seconds.items()
                )
                + "."
            )
    else:
        comparison = "Not computed (notebook 06 / `ganet ablation`)."
    split = run.split
    synthetic_note = (
        " **Synthetic**: these numbers measure the kit on generated subjects, not the paper on BraTS."
        if run.synthetic_brats
        else ""
    )
    text = f"""# Measured: profile `{run.config.profile}`

Written by `ganet results --run {run_dir} --out {out}` on {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")},
commit {commit_description()}, from the files of the run folder. Do not edit by hand: run the
command again.

- Machine: {machine_description()}
- Data: {run.describe()}; {len(split["train"])} training and {len(split["test"])} test subjects.{synthetic_note}

## Wall time and memory

{_timing(run_dir)}

## GAN pre-training

{_gan(run_dir)}

## Table 1: the discriminator as a tumour-slice detector, beside the baselines

{_detectors(run_dir)}

## The feedback as a mechanism

{_feedback(run_dir)}

## Table 2: segmentation (`brats` protocol, mean over the test subjects; seed 0)

{_segmentation(run_dir)}

## GANet-Seg against the plain U-Net

{comparison}
"""
    return atomic_write_text(out, text)
