"""`RUN/report.md`: what a run did and found, in one page (written by run_all.sh, or `ganet report`).

Reads only files the notebooks and the runner left in the run folder: config.json, split.json,
tables/*.csv, metrics/*.csv, the training histories, run_summary.json and the figures. A part
whose inputs are missing says so instead of failing, so a partial run still gets a report.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ganet_lib.config import VARIANTS
from ganet_lib.evaluation import paper
from ganet_lib.evaluation.evaluate import read_rows, region_means, table_2
from ganet_lib.evaluation.postprocess import read_record, summary_sentence
from ganet_lib.files import atomic_write_text
from ganet_lib.run import RunLayout, open_run
from ganet_lib.runner.checks import read_checks
from ganet_lib.studies.ablation import read_ablation, summary_table
from ganet_lib.studies.detector import sweep_roc
from ganet_lib.studies.position import detector_summary, read_detector_table, takeaway


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV the run wrote, as dicts of strings; no rows when the file is missing."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table; floats get 4 significant digits."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.4g}"  # NaN -> empty
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_description() -> str:
    import torch

    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return (
        f"{platform.platform()}; {os.cpu_count()} CPU cores; {memory_gb:.0f} GiB memory; "
        f"{', '.join(gpus) if gpus else 'no GPU'}; Python {sys.version.split()[0]}, torch {torch.__version__}"
    )


def _figure(run_dir: Path, name: str, caption: str) -> str:
    return (
        f"![{caption}](figures/{name})"
        if (RunLayout(run_dir).figures_dir / name).is_file()
        else f"(figure {name} not made in this run)"
    )


def _table_1(run_dir: Path) -> str:
    tables = RunLayout(run_dir).tables_dir
    path = tables / "table1_sweep.csv"
    if not path.is_file():
        return "Not computed in this run (notebook 05 or `ganet sweep`)."
    rows = read_csv(path)
    kit = markdown_table(
        ["Threshold", "Accuracy", "Sensitivity", "Specificity", "TP", "FN", "FP", "TN"],
        [
            [
                r["threshold"],
                f"{float(r['accuracy']):.2%}",
                f"{float(r['sensitivity']):.2%}",
                f"{float(r['specificity']):.2%}",
                r["TP"],
                r["FN"],
                r["FP"],
                r["TN"],
            ]
            for r in rows
        ],
    )
    published = markdown_table(
        ["Threshold", "Accuracy", "Sensitivity", "TP", "FN", "FP"],
        [
            [r["threshold"], f"{r['accuracy']:.2%}", f"{r['sensitivity']:.2%}", r["TP"], r["FN"], r["FP"]]
            for r in paper.TABLE_1
        ],
    )
    slices = read_csv(tables / "sweep_slices.csv") if (tables / "sweep_slices.csv").is_file() else []
    auc = ""
    if slices:
        scores = np.array([float(s["score"]) for s in slices])
        positive = np.array([s["positive"] == "True" for s in slices])
        if positive.any() and not positive.all():
            auc = (
                f" ROC AUC of the mean map: **{sweep_roc(scores, positive)['auc']:.3f}** over {len(slices)} slices, "
                f"{int(positive.sum())} with tumour."
            )
    detectors = ""
    if (tables / "detectors_auc.csv").is_file():
        rows = read_detector_table(tables / "detectors_auc.csv")
        prevalence = next((r["AP chance"] for r in rows if r.get("AP chance") == r.get("AP chance")), float("nan"))
        detectors = (
            "\n\nThe discriminator beside detectors that need none, slice position among them (same slices, higher "
            "score = tumour, "
            "full size unless said; 95 % intervals from a bootstrap over test subjects; average precision's chance "
            "level is the "
            f"share of tumour slices, {prevalence:.3f}; `tables/detectors_auc.csv`):\n\n"
            + markdown_table(*detector_summary(rows))
            + f"\n\n**What this Table 1 can and cannot show.** {takeaway(rows)}\n\n"
            + _figure(
                run_dir, "05_detectors_roc.png", "ROC curves of the discriminator, the baselines and slice position"
            )
            + "\n\n"
            + _figure(run_dir, "05_slice_position.png", "share of tumour slices against slice position")
            + "\n\n"
            + _figure(
                run_dir,
                "05_domain_shift.png",
                "the discriminator on unseen normals, tumour-free and tumour test slices",
            )
        )
    discriminator = RunLayout(run_dir).gan.best.relative_to(run_dir)
    return (
        f"This run (discriminator `{discriminator}`, test subjects, full-size T1 slices, the authors' "
        f"protocol).{auc}\n\n{kit}{detectors}\n\n"
        f"The paper (BraTS 2020, 36 subjects, {paper.TABLE_1_SLICES} slices, its own discriminator):\n\n{published}\n\n"
        "An absolute threshold belongs to one discriminator: compare operating points on the ROC curve, not rows. "
        + _figure(run_dir, "05_roc.png", "ROC curve of the discriminator sweep")
    )


def _table_2(run) -> str:
    rows = table_2(run)
    if len(rows) == len(paper.TABLE_2):
        return "Not computed in this run (notebook 06 or `ganet evaluate` into metrics/<variant>_<protocol>.csv)."
    columns = [column for column in rows[0] if column not in ("model", "source")]
    header = ["Model"] + columns + ["Source"]
    body = [[row["model"]] + [row[column] for column in columns] + [row["source"]] for row in rows]
    return (
        markdown_table(header, body) + "\n\nDice and NSD in %; HD95 in mm for `brats`, in voxels for `brats-panoptica` "
        "(its global HD95, as the official code computes it), in pixels x 10 for `paper-slicewise`. "
        "`brats-panoptica` is the official BraTS 2025+ evaluation (brats-evaluation 0.0.10's rules: lesions matched "
        "one to one, NSD, 373 for an empty side; its mean row); `brats` the BraTS 2023 one. "
        "**The rows are not comparable with each other**: the paper's GANet-Seg row is the authors' slice-wise "
        "protocol "
        "(its WT / ET / TC columns are the labels 1 / 2 / 4, means over 2D slices, missed lesions never penalised); "
        "its baseline rows come from another paper (3D BraTS metrics, other data); only the kit's `brats` rows are "
        "BraTS metrics. Each kit variant has two rows per protocol: its predictions post-processed with the rule "
        "chosen on "
        "its validation subjects (the section below), and the raw arg-max (`-raw`). Per-case rows: "
        "`metrics/<variant>_<protocol>.csv` and `metrics/<variant>-raw_<protocol>.csv` (the `ganet evaluate` format)."
    )


def _postprocessing(run_dir: Path) -> str:
    layout = RunLayout(run_dir)
    parts = [
        f"- {summary_sentence(read_record(layout.seg(variant).best), variant)}"
        for variant in VARIANTS
        if layout.seg(variant).best.is_file()
    ]
    if not parts:
        return "Not computed in this run (notebook 04 or `ganet train-seg`)."
    return (
        "Each variant's rule is chosen on its own validation subjects (never a test subject), by the `brats` protocol: "
        'the mean over subjects and regions of (whole-volume Dice + lesion-wise Dice) / 2; "none" is kept unless a '
        "rule "
        "scores higher. Every candidate's validation scores: `seg-<variant>/postprocess.json` and notebook 04.\n\n"
        + "\n".join(parts)
    )


def _checks(run_dir: Path) -> str:
    checks = read_checks(run_dir)
    if not checks:
        return "No learning check ran (notebooks 03 and 04)."
    words = {
        "pass": "pass",
        "stop": "FAILED (stopped the run)",
        "finding": "not met: a finding on this data (the run went on)",
        "off": "not met; not enforced (notebooks.learning_checks: false)",
    }
    rows = [
        [name, entry["notebook"], words[entry["outcome"]], entry["detail"], entry["kind"]]
        for name, entry in checks.items()
    ]
    return (
        markdown_table(["Check", "Notebook", "Outcome", "Measured", "Kind"], rows)
        + "\n\n`training` checks stop a run on any data; `kit-guard` checks stop it only on the kit's embedded "
        "synthetic data, "
        "where the kit is known to pass them, and are findings on other data (`ganet_lib/runner/checks.py`)."
    )


def _ablation(run_dir: Path) -> str:
    lines = []
    rows = []
    layout = RunLayout(run_dir)
    for variant in VARIANTS:
        history = layout.seg(variant).history
        seconds = [float(r["seconds"]) for r in read_csv(history)] if history.is_file() else []
        for raw, kind in ((False, "post-processed"), (True, "raw arg-max")):
            path = layout.metrics_file(variant, "brats", raw)
            if not path.is_file():
                continue
            means = region_means(read_rows(path))
            regions = ("WT", "TC", "ET")  # a region the labels do not have (whole-tumour masks: TC, ET) stays empty
            rows.append(
                [variant, kind]
                + [
                    means.get(g, {}).get(column, float("nan"))
                    for column in ("dice", "hd95", "lw_dice")
                    for g in regions
                ]
                + [sum(seconds) / len(seconds) if seconds else float("nan")]
            )
    if not rows:
        return "Not computed in this run (notebooks 04 and 06)."
    lines.append(
        "The same trainer with (`ganet`) and without (`unet`) the adversarial feedback, `brats` protocol, mean over "
        "the test subjects (seed 0):\n"
    )
    lines.append(
        markdown_table(
            [
                "Variant",
                "Predictions",
                "Dice WT",
                "Dice TC",
                "Dice ET",
                "HD95 WT",
                "HD95 TC",
                "HD95 ET",
                "LW Dice WT",
                "LW Dice TC",
                "LW Dice ET",
                "s / epoch (mean over all epochs)",
            ],
            rows,
        )
    )
    ablation = read_ablation(run_dir)
    if ablation:
        seeds = ablation["seeds"]
        lines.append(
            f"\nPaired per subject, post-processed predictions (seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, seeds))}; `tables/ablation_summary.csv`):\n"
        )
        lines.append(markdown_table(*summary_table(ablation["summary"])))
        lines.append(f"\n**{ablation['sentence']}**")
        if ablation.get("summary_raw"):
            lines.append("\nThe same for the raw arg-max (`tables/ablation_summary_raw.csv`):\n")
            lines.append(markdown_table(*summary_table(ablation["summary_raw"])))
        lines.append("\n" + _figure(run_dir, "06_ablation.png", "paired Dice differences and their 95 % intervals"))
    lines.append("\n" + _figure(run_dir, "04_training_curves.png", "training curves of both variants"))
    lines.append("\n" + _figure(run_dir, "06_per_subject.png", "per-subject scores"))
    return "\n".join(lines)


def write_report(run_dir: Path | str) -> Path:
    """Write RUN/report.md from the run folder's files; returns its path."""
    run_dir = Path(run_dir)
    run = open_run(run_dir)
    summary = json.loads((run_dir / "run_summary.json").read_text()) if (run_dir / "run_summary.json").is_file() else {}
    split = run.split
    data = [
        f"- {run.describe()}",
        f"- {len(split['train'])} training and {len(split['test'])} test subjects "
        f"({'the paper' if split['rule'] == 'paper' else 'seeded'} split; `split.json`)",
        (
            f"- {len(run.normals)} normal (NFBS-layout) subjects for the GAN"
            if run.config.gan.normals == "nfbs"
            else f"- GAN normals: the tumour-free axial slices of the {len(split['train'])} training subjects, at "
            f"least {run.config.gan.normal_margin} "
            "slices from any tumour (`gan.normals: tumour-free-slices`, a departure from the paper, which used NFBS)"
        ),
    ]
    if run.config.data.labels == "whole-tumour":
        data.append(
            "- Whole-tumour label maps: only WT is scored; TC and ET stay empty (there is nothing to compute them from)"
        )
    if run.synthetic_brats:
        data.append(
            "- **Synthetic segmentation data**: every segmentation and detection number below measures the kit's code "
            "on generated subjects, "
            "not the paper's claims on BraTS."
        )
    else:
        data.append(
            "- **Real segmentation data**: the BraTS-layout subjects are the files named above; nothing of them was "
            "generated."
        )
    if run.synthetic_normals:
        data.append(
            "- The GAN's normal subjects are synthetic (generated NFBS-layout brains): no NFBS folder was named."
        )
    timing_rows = [[t["notebook"], t["seconds"]] for t in summary.get("timings", [])]
    timing = (
        markdown_table(["Notebook", "Seconds"], timing_rows)
        if timing_rows
        else "(no timings: the notebooks were not run by run_all.sh)"
    )
    if summary:
        timing += (
            f"\n\nTotal wall time of this invocation {summary['wall_seconds']:.0f} s; largest notebook kernel "
            f"{summary['peak_mb']:.0f} MB resident."
            + (
                f" Skipped (completed by an interrupted earlier run): {', '.join(summary['skipped'])}."
                if summary.get("skipped")
                else ""
            )
            + f"\n\nReused (settings unchanged): {', '.join(summary['reused']) or 'nothing'}. Built in this run: "
            f"{', '.join(summary['rebuilt']) or 'nothing'}."
        )
    text = f"""# GANet-Seg kit: results of profile `{run.config.profile}`

Written {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")} from `{run_dir}`.

## Data

{chr(10).join(data)}

## Table 1: the discriminator as a tumour-slice detector

{_table_1(run_dir)}

## Table 2: segmentation, in three protocols

{_table_2(run)}

## Post-processing, chosen on the validation subjects

{_postprocessing(run_dir)}

## Ablation: the adversarial feedback

{_ablation(run_dir)}

## Checks

{_checks(run_dir)}

## Wall time and memory

{timing}

## Machine

{machine_description()}

## Resolved configuration (`config.json`)

```json
{run.config.to_json()}
```
"""
    return atomic_write_text(run_dir / "report.md", text)
