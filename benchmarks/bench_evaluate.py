"""Speed of `ganet evaluate` (the `brats` protocol) on full-size cases, today's code and a baseline side by side.

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
It checks that every CSV is identical to the baseline's, and prints seconds per case and ratios.

The official BraTS 2023 code (github.com/rachitsaluja/BraTS-2023-Metrics) cannot be installed
here (not on PyPI, GitHub unreachable). Issue 20 timed it side by side with the baseline on this
kind of machine: 3.02 s against 0.47 s per case (`--official-ratio 6.4`). The ratio to the
official code printed here is derived from that: 6.4 x (baseline seconds / new seconds), measured
on other cases than these; a derived figure, and printed as such.

The BraTS 2025+ protocol (`--protocol brats-panoptica`) is timed against the official package itself
by `benchmarks/bench_panoptica.py`.

Usage:  .venv/bin/python benchmarks/bench_evaluate.py [--cases 20] [--workers 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ganet_lib.data.synthetic import BRATS_FOV_MM, BRATS_SHAPE, smooth_noise, subject_maps

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "evaluate"
BASELINE_COMMIT = "823df1a"  # the kit before issue 20's faster evaluation


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
        "--official-ratio",
        type=float,
        default=3.02 / 0.47,
        help="official BraTS 2023 code's seconds per case over the baseline's, measured side by side in issue 20 "
        "(3.02 / 0.47)",
    )
    args = parser.parse_args()

    print(f"cases: {args.cases} of {BRATS_SHAPE} (benchmarks/out/evaluate/)", flush=True)
    gt, pred = write_cases(args.cases, args.seed)
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

    reference = (scratch / "0.csv").read_text()
    identical = all((scratch / f"{index}.csv").read_text() == reference for index in range(1, len(setups)))
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
    print(f"CSV identical to the baseline's, byte for byte: {'yes' if identical else 'NO'}")
    best = min(np.median(v) for v in seconds.values()) / args.cases
    derived = args.official_ratio * base / best
    print(
        f"target: 20x the official code -> {'met' if derived >= 20 else 'NOT met'} (derived {derived:.1f}x: the "
        "official code at "
        f"{args.official_ratio:.1f}x the baseline's time, as measured in issue 20, and the best new path at "
        f"{base / best:.1f}x faster than the baseline here)"
    )
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
