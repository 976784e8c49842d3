"""Speed of the kit's BraTS 2025+ evaluation (`ganet_lib.evaluation.panoptica`) against the official one.

Writes N synthetic BraTS 2024-style cases of 240 x 240 x 155 into benchmarks/out/panoptica/ once
(reused by later calls): labels 1 NETC, 2 SNFH, 3 ET, 4 RC; two or three tumours (SNFH around ET
around NETC, so lesions of different labels touch), a resection cavity against the first, small lone
lesions, speckle. The prediction: the truth shifted by a voxel, each label grown or shrunk at
random, one small lesion missed, false positives, its own speckle. Official names: references
`ref/BraTS-GLI-0000k-000-seg.nii.gz`, predictions `pred/team-0000k-000.nii.gz`.

Then, in one run on the same files:
- the official pipeline, `brats-evaluate --config gli` + `brats-parse-metrics seg`, from the venv
  given by --oracle or $GANET_BRATS_EVAL_VENV (skipped, with a message, when there is none);
- the kit's `score_folders` (reading the files, scoring, the table), with 1 worker and with N;
- `ganet evaluate --protocol brats-panoptica` as a whole process (start-up, the label survey,
  reading, scoring, the CSV), with --workers 1 and N, on the same files laid out as BraTS folders;
and prints seconds per case, the speed-up, and the largest absolute difference over all columns
and rows of the two tables (NaN equal to NaN, inf to inf).

Usage:  .venv/bin/python benchmarks/bench_panoptica.py [--cases 4] [--workers 2] [--oracle /path/to/venv]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ganet_lib.evaluation.evaluate import read_rows
from ganet_lib.evaluation.panoptica import COLUMNS, score_folders

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "panoptica"
SHAPE = (240, 240, 155)


def ellipsoid(shape, centre, radii) -> tuple[tuple[slice, ...], np.ndarray]:
    """(box, mask inside the box) of an ellipsoid: cheap at full size."""
    box = tuple(slice(max(int(c - r) - 1, 0), min(int(c + r) + 2, size)) for c, r, size in zip(centre, radii, shape))
    grid = np.ogrid[tuple(slice(b.start, b.stop) for b in box)]
    return box, sum(((axis - c) / r) ** 2 for axis, c, r in zip(grid, centre, radii)) <= 1.0


def paint(volume: np.ndarray, centre, radii, label: int, only_background: bool = False) -> None:
    box, mask = ellipsoid(volume.shape, centre, radii)
    if only_background:
        mask &= volume[box] == 0
    volume[box][mask] = label


def make_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(truth, prediction) label maps of SHAPE in BraTS 2024 labels."""
    truth = np.zeros(SHAPE, np.uint8)
    centres = []
    for _ in range(int(rng.integers(2, 4))):
        centre = rng.uniform((60, 60, 40), (180, 180, 115))
        centres.append(centre)
        paint(truth, centre, rng.uniform(12, 28, 3), 2)
        core = centre + rng.uniform(-3, 3, 3)
        paint(truth, core, rng.uniform(6, 12, 3), 3)
        paint(truth, core, rng.uniform(2, 5, 3), 1)
    paint(truth, centres[0] + (0, 30, 0), rng.uniform(8, 12, 3), 4, only_background=True)  # cavity against it
    for label in (3, 3, 2, 1):  # small lone lesions
        paint(truth, rng.uniform((30, 30, 20), (210, 210, 135)), rng.uniform(1.5, 4, 3), label)
    speckle = tuple(rng.integers(0, size, 40) for size in SHAPE)
    truth[speckle] = rng.integers(1, 5, 40)

    prediction = np.roll(truth, 1, axis=int(rng.integers(0, 3)))
    grown = np.zeros_like(prediction)
    for label in (2, 4, 3, 1):  # each label grown or shrunk by a voxel, inner labels drawn last
        mask = prediction == label
        step = int(rng.integers(-1, 2))
        if step > 0:
            mask = ndimage.binary_dilation(mask)
        elif step < 0:
            mask = ndimage.binary_erosion(mask)
        grown[mask] = label
    prediction = grown
    paint(prediction, rng.uniform((30, 30, 20), (210, 210, 135)), rng.uniform(2, 6, 3), 3)  # false positives
    paint(prediction, rng.uniform((30, 30, 20), (210, 210, 135)), rng.uniform(3, 8, 3), 2)
    speckle = tuple(rng.integers(0, size, 60) for size in SHAPE)
    prediction[speckle] = rng.integers(0, 5, 60)
    return truth, prediction


def write_cases(count: int, seed: int) -> tuple[Path, Path]:
    """benchmarks/out/panoptica/<count>-cases-seed<seed>/{ref,pred} (kept once written)."""
    folder = OUT / f"{count}-cases-seed{seed}"
    reference_dir, prediction_dir = folder / "ref", folder / "pred"
    if (folder / "done").is_file():
        return reference_dir, prediction_dir
    reference_dir.mkdir(parents=True, exist_ok=True)
    prediction_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    for index in range(count):
        subject = f"{index + 1:05d}-000"
        print(f"  writing case {subject} ({index + 1}/{count})", flush=True)
        truth, prediction = make_pair(rng)
        nib.save(nib.Nifti1Image(truth, affine), reference_dir / f"BraTS-GLI-{subject}-seg.nii.gz")
        nib.save(nib.Nifti1Image(prediction, affine), prediction_dir / f"team-{subject}.nii.gz")
    (folder / "done").write_text("")
    return reference_dir, prediction_dir


def official(venv: Path, reference_dir: Path, prediction_dir: Path, work: Path) -> tuple[float, list[dict]]:
    """Seconds of brats-evaluate + brats-parse-metrics, and the CSV's rows."""
    summary, table = work / "official.json", work / "official.csv"
    started = time.perf_counter()
    for command in (
        [
            venv / "bin" / "brats-evaluate",
            "--config",
            "gli",
            "--ref_path",
            reference_dir,
            "--pred_path",
            prediction_dir,
            "--summary_json",
            summary,
        ],  # fmt: skip
        [venv / "bin" / "brats-parse-metrics", "seg", "--json_path", summary, "--output_csv_path", table],
    ):
        done = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=7200)
        if done.returncode != 0:
            raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    seconds = time.perf_counter() - started
    with table.open(newline="") as handle:
        return seconds, list(csv.DictReader(handle))


def largest_difference(kit: list[dict], official_rows: list[dict]) -> float:
    """max |kit - official| over every column of every row; inf where NaN/inf disagree."""
    if [row["subject_id"] for row in kit] != [row["subject_id"] for row in official_rows]:
        return math.inf
    worst = 0.0
    for kit_row, official_row in zip(kit, official_rows):
        for column in COLUMNS:
            text = official_row[column]
            expected, got = (math.nan if text == "" else float(text)), kit_row[column]
            if math.isnan(expected) or math.isinf(expected) or math.isnan(got) or math.isinf(got):
                same = (math.isnan(expected) and math.isnan(got)) or expected == got
                worst = worst if same else math.inf
            else:
                worst = max(worst, abs(got - expected))
    return worst


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the parallel run's workers")
    parser.add_argument(
        "--oracle",
        default=os.environ.get("GANET_BRATS_EVAL_VENV"),
        help="venv with brats-evaluation 0.0.10 (default: $GANET_BRATS_EVAL_VENV)",
    )
    args = parser.parse_args()

    print(f"cases: {args.cases} of {SHAPE} (benchmarks/out/panoptica/)", flush=True)
    reference_dir, prediction_dir = write_cases(args.cases, args.seed)
    work = reference_dir.parent

    timings: dict[str, float] = {}
    tables: dict[str, list[dict]] = {}
    venv = Path(args.oracle) if args.oracle else None
    if venv is None or not (venv / "bin" / "brats-evaluate").is_file():
        print(
            f"official pipeline SKIPPED: no brats-evaluate in {venv or '(no venv given)'}; pass --oracle or set "
            "GANET_BRATS_EVAL_VENV to a venv with brats-evaluation==0.0.10 panoptica==2.1.7",
            flush=True,
        )
    else:
        timings["official (brats-evaluate + parse)"], official_rows = official(
            venv, reference_dir, prediction_dir, work
        )
        print(f"  official: {timings['official (brats-evaluate + parse)']:.1f} s", flush=True)
    for workers in dict.fromkeys((1, args.workers)):
        name = f"kit score_folders, {workers} worker{'s' if workers > 1 else ''}"
        started = time.perf_counter()
        tables[name] = score_folders(reference_dir, prediction_dir, workers=workers)
        timings[name] = time.perf_counter() - started
        print(f"  {name}: {timings[name]:.2f} s", flush=True)

    # `ganet evaluate --protocol brats-panoptica` as a user runs it: a whole process (start-up, the label
    # survey, reading, scoring, the CSV), on the same files laid out as BraTS folders (links, no copies).
    layout, predictions = work / "layout", work / "layout-pred"
    for index in range(args.cases):
        name = f"BraTS-GLI-{index + 1:05d}-000"
        (layout / name).mkdir(parents=True, exist_ok=True)
        predictions.mkdir(exist_ok=True)
        for link, target in (
            (layout / name / f"{name}-seg.nii.gz", reference_dir / f"{name}-seg.nii.gz"),
            (predictions / f"{name}.nii.gz", prediction_dir / f"team-{index + 1:05d}-000.nii.gz"),
        ):
            if not link.exists():
                link.symlink_to(target.resolve())
    for workers in dict.fromkeys((1, args.workers)):
        name = f"kit ganet evaluate, --workers {workers}"
        out = work / f"kit-{workers}.csv"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ganet_lib", "evaluate", "--protocol", "brats-panoptica", "--pred", str(predictions)]
            + ["--gt", str(layout), "--out", str(out), "--workers", str(workers)],
            capture_output=True,
            text=True,
            timeout=7200,
        )
        timings[name] = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"ganet evaluate failed ({done.returncode}):\n{done.stderr[-2000:]}")
        tables[name] = read_rows(out)
        print(f"  {name}: {timings[name]:.2f} s", flush=True)

    print(f"\n{args.cases} cases of {SHAPE}; {os.cpu_count()} CPUs: {cpu_name()}")
    official_seconds = timings.get("official (brats-evaluate + parse)")
    print(f"  {'pipeline':40s} {'s / case':>9s} {'speed-up':>9s} {'max |diff|':>11s}")
    for name, seconds in timings.items():
        per_case = seconds / args.cases
        speed_up = f"{official_seconds / seconds:8.1f}x" if official_seconds else "      n/a"
        if name in tables and official_seconds:
            difference = f"{largest_difference(tables[name], official_rows):11.1e}"
        else:
            difference = "          -"
        print(f"  {name:40s} {per_case:9.3f} {speed_up} {difference}")
    print("(kit timings include reading the NIfTI files and building the table, as the official's do)")


if __name__ == "__main__":
    main()
