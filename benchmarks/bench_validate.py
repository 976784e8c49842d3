"""Speed of `ganet validate` on full-size BraTS-layout subjects, one thread against several.

Writes N synthetic subjects at 240 x 240 x 155 (the kit's generator, .nii.gz, about 6 s each on
2 cores) into a temporary folder, or uses --brats DIR, then validates them with 1 thread and with
the default number of threads, twice each, alternating, and prints seconds per subject and the
ratio. Both runs must report the same problems (none, on synthetic data).

Usage:  .venv/bin/python benchmarks/bench_validate.py [--cases 8] [--brats DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ganet_lib.data.synthetic import BRATS_SHAPE, SynthSpec, write_synthetic_dataset
from ganet_lib.data.validate import validate_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--brats", type=Path, help="validate this BraTS folder instead of synthetic subjects")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        brats = args.brats
        if brats is None:
            write_synthetic_dataset(
                Path(scratch), SynthSpec(cases=args.cases, normals=0, shape=BRATS_SHAPE), progress=False
            )
            brats = Path(scratch) / "brats"
        default_workers = min(8, os.cpu_count() or 1)
        seconds: dict[int, list[float]] = {1: [], default_workers: []}
        problems = set()
        for workers in [1, default_workers] * 2:
            started = time.perf_counter()
            report = validate_dataset(brats, require_labels=True, progress=False, workers=workers)
            seconds[workers].append((time.perf_counter() - started) / report.brats_cases)
            problems.add(tuple(report.problems))
        assert len(problems) == 1, "the thread count changed the problems found"
        one, many = min(seconds[1]), min(seconds[default_workers])
        print(f"{report.brats_cases} subjects, {len(next(iter(problems)))} problems; best of 2 runs each")
        print(
            f"1 thread: {one:.3f} s/subject   {default_workers} threads: {many:.3f} s/subject   speed-up "
            f"{one / many:.2f}x"
        )


if __name__ == "__main__":
    main()
