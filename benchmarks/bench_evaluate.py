"""Speed of `ganet evaluate` (the `brats` protocol) and of its HD95 on full-size cases, before and after, side by side.

Writes N cases of 240 x 240 x 155 into benchmarks/out/evaluate/ once (reused by later calls): a
synthetic tumour of the kit's generator as the truth (`<case>/<case>_seg.nii.gz`), and a realistic
imperfect prediction of it (`pred/<case>.nii.gz`): the whole tumour's boundary moved in and out by
up to ~3 voxels (smooth random field), the inner labels kept where both agree, shifted by one
voxel, and two small false-positive blobs.

Then, in one run, alternating so that both see the same machine load:
- `ganet evaluate` of the checkout (the new path), with --workers 1 and --workers W;
- `ganet evaluate` of the baseline commit (default: the last commit before the faster
  evaluation, extracted with `git archive` into benchmarks/out/), which has no --workers;
each as a whole process (start-up, reading the files, scoring, writing the CSV), REPEATS times.
It checks that every CSV equals the baseline's in every column but the two HD95 ones (HD95 follows
the official surface-patch table since issue 34; how many HD95 values moved, and how far, is
printed), and prints seconds per case and ratios.

Then the HD95 path alone, on the WT, TC and ET masks of the cases (or the first HD95_CASES), alternating:
- `surface.hd95` before issue 34 (default commit b447350: the kit's own marching-cubes areas),
  read from git into benchmarks/out/;
- `surface.hd95` of the checkout (the official table, the same bounding box and k-d tree);
- DeepMind's `surface-distance` package as the official BraTS 2023 code calls it
  (`compute_surface_distances` on the whole volume, then `compute_robust_hausdorff(.., 95)`);
with seconds per call (median over the calls) and each one's largest difference from the package.

The official BraTS 2023 code (github.com/rachitsaluja/BraTS-2023-Metrics) cannot be installed
here (not on PyPI, GitHub unreachable). Issue 20 timed it side by side with the baseline on this
kind of machine: 3.02 s against 0.47 s per case (`--official-ratio 6.4`). The ratio to the
official code printed here is derived from that: 6.4 x (baseline seconds / new seconds), measured
on other cases than these; a derived figure, and printed as such.

The BraTS 2025+ protocol (`--protocol brats-panoptica`) is timed against the official package itself
by `benchmarks/bench_panoptica.py`.

Usage:  .venv/bin/python benchmarks/bench_evaluate.py [--cases 20] [--workers 2] [--repeats 2] [--hd95-cases N]
        [--hd95-only]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import surface_distance
from scipy import ndimage

from ganet_lib.data.labels import BRATS
from ganet_lib.data.synthetic import BRATS_FOV_MM, BRATS_SHAPE, smooth_noise, subject_maps
from ganet_lib.evaluation import surface

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "evaluate"
BASELINE_COMMIT = "823df1a"  # the kit before issue 20's faster evaluation
HD95_BEFORE_COMMIT = "b447350"  # the kit before issue 34: HD95 on its own marching-cubes surface areas
HD95_COLUMNS = ("hd95", "lw_hd95")


def make_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A (truth, prediction) pair of 0/1/2/4 label volumes at BRATS_SHAPE."""
    _, truth = subject_maps(BRATS_SHAPE, BRATS_FOV_MM, rng, with_tumour=True)
    whole = truth > 0
    # Signed distance to the whole tumour's surface (negative inside), moved by a smooth field.
    signed = ndimage.distance_transform_edt(~whole) - ndimage.distance_transform_edt(whole)
    predicted_whole = signed < 3.0 * smooth_noise(BRATS_SHAPE, rng, cells=8)
    prediction = np.where(predicted_whole, np.where(whole, truth, 2), 0).astype(np.uint8)
    prediction = np.roll(prediction, 1, axis=0)
    for _ in range(2):  # small false positives (ET blobs) away from the tumour
        centre = rng.integers(40, 200, 3) * np.array([1, 1, 155 / 240])
        z, y, x = np.ogrid[: BRATS_SHAPE[0], : BRATS_SHAPE[1], : BRATS_SHAPE[2]]
        blob = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 < 9
        prediction[blob & ~whole] = 4
    return truth, prediction


def write_cases(count: int, seed: int) -> tuple[Path, Path]:
    """benchmarks/out/evaluate/{gt,pred} with `count` cases (kept; regenerated when the count or seed differs)."""
    folder = OUT / f"{count}-cases-seed{seed}"
    gt, pred = folder / "gt", folder / "pred"
    if (folder / "done").is_file():
        return gt, pred
    rng = np.random.default_rng(seed)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    for index in range(count):
        case = f"BraTS20_Training_{index + 1:03d}"
        print(f"  writing {case} ({index + 1}/{count})", flush=True)
        truth, prediction = make_pair(rng)
        (gt / case).mkdir(parents=True, exist_ok=True)
        pred.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(truth.astype(np.uint8), affine), gt / case / f"{case}_seg.nii.gz")
        nib.save(nib.Nifti1Image(prediction, affine), pred / f"{case}.nii.gz")
    (folder / "done").write_text("")
    return gt, pred


def baseline_tree(commit: str) -> Path:
    """The baseline commit's ganet_lib, extracted once into benchmarks/out/baseline-<commit>/."""
    target = ROOT / "benchmarks" / "out" / f"baseline-{commit}"
    if not (target / "ganet_lib" / "cli.py").is_file():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "ganet_lib"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def timed_evaluate(code_root: Path, gt: Path, pred: Path, out: Path, extra: list[str]) -> float:
    """Seconds of one `python -m ganet_lib evaluate` process run from `code_root`'s ganet_lib."""
    env = dict(os.environ, PYTHONPATH=str(code_root))
    command = [
        sys.executable,
        "-m",
        "ganet_lib",
        "evaluate",
        "--pred",
        str(pred),
        "--gt",
        str(gt),
        "--out",
        str(out),
        *extra,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=code_root, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def compare_csv(reference: Path, other: Path) -> tuple[bool, int, int, float]:
    """(every column but HD95 identical, HD95 values that differ, HD95 values, largest |difference|)."""
    with open(reference, newline="") as a, open(other, newline="") as b:
        rows_a, rows_b = list(csv.DictReader(a)), list(csv.DictReader(b))
    same_rest = len(rows_a) == len(rows_b) and all(
        {k: v for k, v in ra.items() if k not in HD95_COLUMNS} == {k: v for k, v in rb.items() if k not in HD95_COLUMNS}
        for ra, rb in zip(rows_a, rows_b)
    )
    pairs = [(ra[k], rb[k]) for ra, rb in zip(rows_a, rows_b) for k in HD95_COLUMNS if ra[k] != "" or rb[k] != ""]
    differences = [abs(float(x) - float(y)) for x, y in pairs if x != y]
    return same_rest, len(differences), len(pairs), max(differences, default=0.0)


# --- the HD95 path alone ------------------------------------------------------------------------


def surface_module_of(commit: str):
    """evaluation/surface.py as it was at `commit`, imported from benchmarks/out/ (it needs only numpy and scipy)."""
    path = ROOT / "benchmarks" / "out" / f"surface-{commit}.py"
    if not path.is_file():
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:ganet_lib/evaluation/surface.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"surface_{commit}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def package_hd95(prediction: np.ndarray, truth: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """HD95 as the official BraTS 2023 code computes it with `surface-distance` (both masks non-empty)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its scipy.ndimage.filters / .morphology names
        distances = surface_distance.compute_surface_distances(truth, prediction, spacing)
    return float(surface_distance.compute_robust_hausdorff(distances, 95))


def region_pairs(gt: Path, pred: Path, count: int) -> list[tuple[str, np.ndarray, np.ndarray, tuple]]:
    """(case/region, prediction mask, truth mask, spacing) of the first `count` cases, both masks non-empty."""
    pairs = []
    for case_dir in sorted(gt.iterdir())[:count]:
        truth_image = nib.load(case_dir / f"{case_dir.name}_seg.nii.gz")
        truth = np.asarray(truth_image.dataobj)
        prediction = np.asarray(nib.load(pred / f"{case_dir.name}.nii.gz").dataobj)
        spacing = tuple(float(z) for z in truth_image.header.get_zooms()[:3])
        for region, labels in BRATS.regions.items():
            p, t = np.isin(prediction, labels), np.isin(truth, labels)
            if p.any() and t.any():  # the empty rules (0 / 374) are no surface computation
                pairs.append((f"{case_dir.name} {region}", p, t, spacing))
    return pairs


def time_hd95(pairs: list, functions: dict, repeats: int) -> tuple[dict, dict]:
    """Seconds of every call and every value, per function; functions alternate pair by pair."""
    seconds = {name: [] for name in functions}
    values = {name: [] for name in functions}
    for repeat in range(repeats):
        for _, prediction, truth, spacing in pairs:
            for name, hd95 in functions.items():
                started = time.perf_counter()
                value = hd95(prediction, truth, spacing)
                seconds[name].append(time.perf_counter() - started)
                if repeat == 0:
                    values[name].append(value)
    return seconds, values


def report_hd95(gt: Path, pred: Path, count: int, repeats: int, before: str) -> None:
    pairs = region_pairs(gt, pred, count)
    functions = {
        f"before ({before}, kit's own areas)": surface_module_of(before).hd95,
        "after (official table)": surface.hd95,
        "surface-distance package": package_hd95,
    }
    seconds, values = time_hd95(pairs, functions, repeats)
    official = np.array(values["surface-distance package"])
    print(
        f"\nHD95 alone, {len(pairs)} region pairs (WT, TC, ET of {count} cases of {BRATS_SHAPE}), median seconds "
        f"per call over {repeats} repeat(s); largest |HD95 - package's| and how many pairs differ by more than 1e-9 mm"
    )
    package_time = np.median(seconds["surface-distance package"])
    for name in functions:
        time_per_call = np.median(seconds[name])
        difference = np.abs(np.array(values[name]) - official)
        print(
            f"  {name:36s} {time_per_call:7.3f} s  ({package_time / time_per_call:4.1f}x the package)   "
            f"max |diff| {difference.max():.3g} mm, {(difference > 1e-9).sum()} of {len(pairs)} pairs differ"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="the parallel run's --workers (default: the CPU count)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline", default=BASELINE_COMMIT, help="the commit to compare with")
    parser.add_argument(
        "--hd95-cases", type=int, default=None, help="cases whose WT/TC/ET masks time the HD95 path (default: all)"
    )
    parser.add_argument("--hd95-before", default=HD95_BEFORE_COMMIT, help="the commit whose surface.hd95 is 'before'")
    parser.add_argument("--hd95-only", action="store_true", help="only the HD95 path, not `ganet evaluate`")
    parser.add_argument(
        "--official-ratio",
        type=float,
        default=3.02 / 0.47,
        help="official BraTS 2023 code's seconds per case over the baseline's, measured side by side in issue 20 "
        "(3.02 / 0.47)",
    )
    args = parser.parse_args()

    print(f"cases: {args.cases} of {BRATS_SHAPE} (benchmarks/out/evaluate/)", flush=True)
    gt, pred = write_cases(args.cases, args.seed)
    hd95_cases = args.hd95_cases or args.cases
    if args.hd95_only:
        report_hd95(gt, pred, count=hd95_cases, repeats=args.repeats, before=args.hd95_before)
        return
    baseline = baseline_tree(args.baseline)
    scratch = OUT / "csv"
    scratch.mkdir(parents=True, exist_ok=True)
    setups = {
        f"baseline {args.baseline}": (baseline, []),
        "new, --workers 1": (ROOT, ["--workers", "1"]),
        f"new, --workers {args.workers}": (ROOT, ["--workers", str(args.workers)]),
    }
    seconds = {name: [] for name in setups}
    for repeat in range(args.repeats):
        for index, (name, (code_root, extra)) in enumerate(setups.items()):
            seconds[name].append(timed_evaluate(code_root, gt, pred, scratch / f"{index}.csv", extra))
            print(f"  repeat {repeat + 1}: {name}: {seconds[name][-1]:.2f} s", flush=True)

    comparisons = [compare_csv(scratch / "0.csv", scratch / f"{index}.csv") for index in range(1, len(setups))]
    identical = all(same_rest for same_rest, *_ in comparisons)
    base = np.median(seconds[f"baseline {args.baseline}"]) / args.cases
    print(
        f"\n`ganet evaluate`, {args.cases} cases of {BRATS_SHAPE}, whole process (start-up included), median of "
        f"{args.repeats}; {os.cpu_count()} CPUs"
    )
    for name, values in seconds.items():
        per_case = np.median(values) / args.cases
        print(
            f"  {name:24s} {per_case:.3f} s per case  ({base / per_case:4.1f}x the baseline; "
            f"derived: {args.official_ratio * base / per_case:4.1f}x the official code)"
        )
    print(
        f"CSV identical to the baseline's in every column but {', '.join(HD95_COLUMNS)}: {'yes' if identical else 'NO'}"
    )
    for (_, changed, total, largest), name in zip(comparisons, list(setups)[1:]):
        print(
            f"  {name}: {changed} of {total} HD95 values differ from the baseline's (official table now), "
            f"max {largest:.4f} mm"
        )
    best = min(np.median(v) for v in seconds.values()) / args.cases
    derived = args.official_ratio * base / best
    print(
        f"target: 20x the official code -> {'met' if derived >= 20 else 'NOT met'} (derived {derived:.1f}x: the "
        "official code at "
        f"{args.official_ratio:.1f}x the baseline's time, as measured in issue 20, and the best new path at "
        f"{base / best:.1f}x faster than the baseline here)"
    )
    report_hd95(gt, pred, count=hd95_cases, repeats=args.repeats, before=args.hd95_before)
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
