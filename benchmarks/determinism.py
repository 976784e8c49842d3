"""Which runs are bit-identical: the smoke profile trained from nothing with several thread counts.

    .venv/bin/python benchmarks/determinism.py [--threads 1 2 2]

Each entry trains the smoke profile (synthetic data, GAN, both U-Nets) in a fresh process with
`torch.set_num_threads(n)` into its own folder, then prints, for every pair of runs, the largest
absolute difference over all weights of the three checkpoints (0 = bit-identical) and the
test-set WT Dice of both variants. The README's "Reproducibility" section quotes its output.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from ganet_lib.checkpoint import load_checkpoint

TRAIN = """
import sys, torch
torch.set_num_threads(int(sys.argv[2]))
from ganet_lib.run import setup_run
from ganet_lib.method.train_gan import pretrain_gan_for_run
from ganet_lib.method.train_seg import train_segmentation_for_run
run = setup_run("smoke", sys.argv[1], progress=False)
pretrain_gan_for_run(run, progress=False)
for variant in ("ganet", "unet"):
    train_segmentation_for_run(run, variant, progress=False)
"""
NETWORKS = (("gan", "generator"), ("gan", "discriminator"), ("seg-ganet", "model"), ("seg-unet", "model"))


def largest_difference(left: Path, right: Path) -> float:
    worst = 0.0
    for folder, part in NETWORKS:
        a, b = load_checkpoint(left / folder / "last.pt")[part], load_checkpoint(right / folder / "last.pt")[part]
        worst = max(worst, max(float((a[k].double() - b[k].double()).abs().max()) for k in a))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2, 2], help="one training per entry (default 1 2 2)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs = []
        for index, threads in enumerate(args.threads):
            folder = Path(scratch) / f"run{index}-threads{threads}"
            subprocess.run(
                [sys.executable, "-c", TRAIN, str(folder), str(threads)], check=True, capture_output=True, timeout=900
            )
            runs.append((f"run {index} ({threads} thread{'s' if threads > 1 else ''})", folder))
            print(f"trained {runs[-1][0]}", flush=True)
        print(
            f"torch {torch.__version__}; largest absolute weight difference over the GAN and both U-Nets (0 = "
            "bit-identical):"
        )
        for (name_a, a), (name_b, b) in itertools.combinations(runs, 2):
            print(f"  {name_a} vs {name_b}: {largest_difference(a, b):.3g}")


if __name__ == "__main__":
    main()
