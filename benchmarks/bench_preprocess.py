"""Pre-processing speed and memory on full-size synthetic subjects (240 x 240 x 155, four modalities).

Prints, side by side in one run:
- seconds per subject for nibabel alone to load the subject's five files (get_fdata, float32);
- seconds per subject for `build_slice_cache` (load + crop + normalise + resize + enhance + write);
- their ratio (target: <= 1.5);
- peak resident memory of a fresh process building the cache for 5 and for 20 subjects (target: flat).

Usage:  .venv/bin/python benchmarks/bench_preprocess.py [--cases 20] [--format nii.gz|nii] [--repeats 2]
Synthetic data and caches go to benchmarks/out/ (git-ignored); the data is reused between runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from ganet_lib.config import PreprocessConfig
from ganet_lib.data.cases import find_brats_cases
from ganet_lib.data.synthetic import BRATS_SHAPE, SynthSpec, write_synthetic_dataset
from ganet_lib.method.preprocess import build_slice_cache

OUT = Path(__file__).resolve().parent / "out"


def dataset(cases: int, compress: bool) -> Path:
    root = OUT / f"synth-{cases}-{'niigz' if compress else 'nii'}"
    print(f"synthetic data: {root} ({cases} subjects, {BRATS_SHAPE}, {'.nii.gz' if compress else '.nii'})", flush=True)
    write_synthetic_dataset(root, SynthSpec(cases=cases, normals=0, shape=BRATS_SHAPE, compress=compress))
    return root / "brats"


def time_nibabel(cases) -> float:
    start = time.perf_counter()
    for case in cases:
        for path in [*case.images.values(), case.label]:
            nib.load(path).get_fdata(dtype=np.float32)
    return time.perf_counter() - start


def time_cache(cases) -> float:
    with tempfile.TemporaryDirectory(dir=OUT) as cache_root:
        start = time.perf_counter()
        build_slice_cache(cases, cache_root, PreprocessConfig(), progress=False)
        return time.perf_counter() - start


def memory_child(brats: str, n: int) -> None:
    cases = find_brats_cases(brats)[:n]
    with tempfile.TemporaryDirectory(dir=OUT) as cache_root:
        build_slice_cache(cases, cache_root, PreprocessConfig(), progress=False)
    print(json.dumps({"cases": n, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--format", choices=["nii.gz", "nii"], default="nii.gz")
    parser.add_argument("--repeats", type=int, default=2, help="alternating timing rounds (best of each is reported)")
    parser.add_argument("--memory-child", nargs=2, metavar=("BRATS_DIR", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return

    OUT.mkdir(exist_ok=True)
    brats = dataset(args.cases, compress=args.format == "nii.gz")
    cases = find_brats_cases(brats)
    time_nibabel(cases)  # warm the page cache so both timings read from memory
    load, build = [], []
    for _ in range(args.repeats):  # alternate, so background load on the machine hits both alike
        load.append(time_nibabel(cases) / len(cases))
        build.append(time_cache(cases) / len(cases))
    print(f"nibabel load alone : {min(load):.3f} s/subject   (rounds: {', '.join(f'{t:.3f}' for t in load)})")
    print(f"build_slice_cache  : {min(build):.3f} s/subject   (rounds: {', '.join(f'{t:.3f}' for t in build)})")
    print(f"ratio              : {min(build) / min(load):.2f}   (target <= 1.5)")

    for n in (5, args.cases):
        result = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(brats), str(n)], capture_output=True, text=True, check=True
        )
        peak = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"peak RSS, {n:3d} subjects: {peak['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
