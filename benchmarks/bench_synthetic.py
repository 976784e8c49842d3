"""Seconds per synthetic subject (template anatomy, tumour, four modalities, writing .nii.gz), at the
default profile's size and at full BraTS size.

    .venv/bin/python benchmarks/bench_synthetic.py [--subjects 3]

Prints, per size, the median and range over `--subjects` BraTS-layout cases and NFBS-layout normals
(each generated from its own seed into a temporary folder), and the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ganet_lib.data.synthetic import load_template, write_brats_case, write_nfbs_subject

SIZES = {"default profile": (96, 96, 64), "full BraTS size": (240, 240, 155)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    load_template()
    print(f"template loaded once per process: {time.perf_counter() - started:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for label, shape in SIZES.items():
            for kind, write in (("BraTS case", write_brats_case), ("NFBS normal", write_nfbs_subject)):
                seconds = []
                for index in range(1, args.subjects + 1):
                    rng = np.random.default_rng([0, index])
                    started = time.perf_counter()
                    write(Path(tmp) / f"{label}-{kind}".replace(" ", "_"), index, shape, rng, ".nii.gz")
                    seconds.append(time.perf_counter() - started)
                print(
                    f"{label} {shape}, {kind}: median {statistics.median(seconds):.2f} s per subject "
                    f"(min {min(seconds):.2f}, max {max(seconds):.2f}, {args.subjects} subjects)"
                )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
