"""Train GAN variants on one data set and print the discriminator's tumour-slice ROC AUC (both views).

    .venv/bin/python benchmarks/gan_variants.py --data runs/default/synthetic --out /tmp/gan_variants \
        --variant disc64 '{"model": {"disc_channels": 64}}' --seeds 0 1 2

Each variant (a name and a JSON of profile overrides, on top of the default profile) is trained once
per seed (`gan.seed`) into OUT/<name>-seed<k>/ on the BraTS- and NFBS-layout folders below --data,
then scored on the run's test subjects: the AUC of "low D map = tumour" for the map's mean (the
paper's) and its 25th percentile, at full size (the authors' protocol) and as trained (cropped,
resized). One JSON line per run, then the mean and sd over seeds per variant. Issue 13's variants
table in the closing note of 2026-11-26 was made with an earlier copy of this script.

    --log docs/gan-variants.jsonl            append each run's row (with its overrides) to a JSON-lines file
    --summarise docs/gan-variants.jsonl --markdown docs/gan-variants.md
                                             no training: the variants table (mean +- sd over seeds) of such a file

The README's reproduction notes link docs/gan-variants.md, written by the second form.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ganet_lib.data.cases import axial_slices, load_label
from ganet_lib.evaluation.metrics import roc_auc
from ganet_lib.files import atomic_write_text
from ganet_lib.method.networks import load_gan
from ganet_lib.method.train_gan import pretrain_gan_for_run
from ganet_lib.run import setup_run
from ganet_lib.studies.detector import discriminator_maps, full_size_t1, held_out_slices


def aucs(run, checkpoint: Path) -> dict[str, float]:
    _, discriminator, _ = load_gan(checkpoint, run.config.model)

    def reductions(maps: np.ndarray) -> dict[str, np.ndarray]:
        flat = maps.reshape(len(maps), -1)
        return {"mean": flat.mean(axis=1), "p25": np.percentile(flat, 25, axis=1)}

    images, tumour = held_out_slices(run, progress=False)
    trained = {
        f"trained_{k}": roc_auc(-v, tumour)
        for k, v in reductions(discriminator_maps(discriminator, images).numpy()).items()
    }
    maps, positive = [], []
    for case in (c for c in run.cases if c.case_id in set(run.split["test"])):
        volume = full_size_t1(case, run.config.preprocess)
        maps.append(discriminator_maps(discriminator, torch.from_numpy(volume[:, None])).numpy())
        positive.append(axial_slices(load_label(case)).any(axis=(1, 2)))
    full = {f"full_{k}": roc_auc(-v, np.concatenate(positive)) for k, v in reductions(np.concatenate(maps)).items()}
    return {**full, **trained}


KEYS = ("full_mean", "full_p25", "trained_mean", "trained_p25")


def summary_markdown(rows: list[dict], source: Path) -> str:
    """The variants table: per variant, its overrides, seeds, and mean +- sd over seeds of each AUC."""
    variants: dict[str, list[dict]] = {}
    for row in rows:
        variants.setdefault(row["variant"], []).append(row)

    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):.3f}" + (f" +- {statistics.stdev(values):.3f}" if len(values) > 1 else "")

    lines = [
        "# The discriminator's tumour-slice ROC AUC, GAN variant by variant",
        "",
        f"Written by `benchmarks/gan_variants.py --summarise {source} --markdown ...` from the rows in `{source}`",
        "(one per trained GAN; each row says where it was measured). Default profile's data (40 synthetic subjects,",
        "template anatomy), 8 test subjects, 512 full-size slices (214 with tumour); 2-core CPU, no GPU. AUC of",
        "\"low D = tumour\" for the map's mean (the paper's reduction) and its 25th percentile; full size = the",
        "authors' protocol, as trained = cropped and resized like the GAN's training slices. The paper's operating",
        "points imply about 0.87. Train s: median over seeds (a shared machine; bigholes seed 2 ran beside two other "
        "jobs).",
        "",
        "| variant | overrides of the default profile | seeds | full size, mean | full size, 25th pct | as trained, "
        "mean | as trained, 25th pct | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, group in variants.items():
        group = sorted(group, key=lambda r: r["seed"])
        lines.append(
            f"| {name} | `{json.dumps(group[0]['overrides'])}` | {', '.join(str(r['seed']) for r in group)} | "
            + " | ".join(spread([r[k] for r in group]) for k in KEYS)
            + f" | {statistics.median(r['train_s'] for r in group):.0f} |"
        )
    lines += [
        "",
        "Per run:",
        "",
        "| variant | seed | " + " | ".join(KEYS) + " | train s | measured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['variant']} | {r['seed']} | "
        + " | ".join(f"{r[k]:.3f}" for k in KEYS)
        + f" | {r['train_s']} | {r['source']} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder holding brats/ and nfbs/ (e.g. runs/default/synthetic)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--log", type=Path, help="append each run's row to this JSON-lines file")
    parser.add_argument("--summarise", type=Path, help="no training: summarise this JSON-lines file (see --markdown)")
    parser.add_argument("--markdown", type=Path, help="with --summarise: write the variants table here")
    parser.add_argument(
        "--variant",
        nargs=2,
        action="append",
        metavar=("NAME", "JSON"),
        default=[],
        help="repeatable; default: the default profile as it is",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    if args.summarise:
        rows = [json.loads(line) for line in args.summarise.read_text().splitlines() if line.strip()]
        text = summary_markdown(rows, args.summarise)
        if args.markdown:
            atomic_write_text(args.markdown, text)
        print(text)
        return
    if args.data is None or args.out is None:
        parser.error("training needs --data and --out (or give --summarise FILE)")
    variants = args.variant or [("default", "{}")]
    summary: dict[str, list[dict]] = {}
    for name, overrides_json in variants:
        overrides = json.loads(overrides_json)
        for seed in args.seeds:
            folder = args.out / f"{name}-seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            values = {
                "extends": "default",
                "data": {
                    "brats_dir": str((args.data / "brats").resolve()),
                    "nfbs_dir": str((args.data / "nfbs").resolve()),
                },
            }
            values = {
                **values,
                **{k: v for k, v in overrides.items() if k != "gan"},
                "gan": {**overrides.get("gan", {}), "seed": seed},
            }
            (folder / "profile.yaml").write_text(yaml.safe_dump(values))
            run = setup_run(str(folder / "profile.yaml"), str(folder), progress=False)
            started = time.perf_counter()
            result = pretrain_gan_for_run(run, progress=False)
            row = {
                "variant": name,
                "seed": seed,
                "train_s": round(time.perf_counter() - started),
                **{k: round(v, 3) for k, v in aucs(run, result.best_checkpoint).items()},
            }
            summary.setdefault(name, []).append(row)
            print(json.dumps(row), flush=True)
            if args.log:
                with open(args.log, "a") as log:
                    log.write(
                        json.dumps(
                            {
                                **row,
                                "overrides": overrides,
                                "source": f"{time.strftime('%Y-%m-%d')}, benchmarks/gan_variants.py",
                            }
                        )
                        + "\n"
                    )
    for name, rows in summary.items():
        parts = []
        for key in ("full_mean", "full_p25", "trained_mean", "trained_p25"):
            values = [r[key] for r in rows]
            parts.append(
                f"{key} {statistics.mean(values):.3f}"
                + (f" +- {statistics.stdev(values):.3f}" if len(values) > 1 else "")
            )
        print(f"{name} over {len(rows)} seed(s): " + ", ".join(parts))


if __name__ == "__main__":
    main()
