"""Speed of the `brats` evaluation protocol on full-size cases (240 x 240 x 155, one process).

Each case: a synthetic tumour (the kit's generator) as the truth, and
a realistic imperfect prediction of it: the whole tumour's boundary moved in and out by up to
~3 voxels (smooth random field), the inner labels kept where both agree, the prediction shifted by
one voxel, and two small false-positive blobs. Prints seconds per case for the full `brats` protocol
(whole-volume Dice and HD95 plus lesion-wise scores for WT, TC and ET), and for comparison the
`paper-slicewise` protocol. Target: under 1 s per case for `brats`.

Usage:  .venv/bin/python benchmarks/bench_evaluate.py [--cases 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from ganet_lib.metrics import brats_scores, paper_slicewise_scores
from ganet_lib.synthetic import BRATS_FOV_MM, BRATS_SHAPE, smooth_noise, subject_maps


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"making {args.cases} truth/prediction pairs of {BRATS_SHAPE} ...", flush=True)
    pairs = [make_pair(rng) for _ in range(args.cases)]

    timings = {"brats": [], "paper-slicewise": []}
    for truth, prediction in pairs:
        started = time.perf_counter()
        scores = brats_scores(prediction, truth)
        timings["brats"].append(time.perf_counter() - started)
        started = time.perf_counter()
        paper_slicewise_scores(prediction, truth)
        timings["paper-slicewise"].append(time.perf_counter() - started)
        wt = scores["WT"]
        print(f"  WT Dice {wt.dice:.3f} HD95 {wt.hd95:6.2f} LW Dice {wt.lw_dice:.3f} TP/FN/FP {wt.tp}/{wt.fn}/{wt.fp};"
              f" brats {timings['brats'][-1]:.3f} s, paper-slicewise {timings['paper-slicewise'][-1]:.3f} s", flush=True)
    for protocol, seconds in timings.items():
        print(f"{protocol}: {np.mean(seconds):.3f} s per case (median {np.median(seconds):.3f}, max {np.max(seconds):.3f}) over {len(seconds)} cases of {BRATS_SHAPE}")
    print(f"target for brats: < 1 s per case -> {'met' if np.mean(timings['brats']) < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
