"""benchmarks/bench_gpu.py --tiny: the GPU benchmark's whole path (data, caches, GAN / unet / ganet
steps in fp32 and bf16, the accelerate launch child, the projection) on the CPU, at small sizes."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_benchmark_runs_tiny_on_the_cpu(tmp_path):
    finished = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_gpu.py"),
            "--out",
            str(tmp_path),
            "--tiny",
            "--steps",
            "5",
            "--warm-up",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    record = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert set(record["results"]) == {
        f"{step} {precision}" for step in ("gan", "unet", "ganet") for precision in ("fp32", "bf16")
    }
    for name, result in record["results"].items():
        assert result["slices_per_s"] > 0 and result["losses_finite"], name
    assert set(record["results"]["ganet fp32"]["losses"]) == {
        "loss_total",
        "loss_seg",
        "loss_sparsity",
        "loss_adv",
        "loss_size",
    }
    assert record["results"]["gan fp32"]["d_updates"] >= 1  # the 5:1 schedule reached a D update
    assert record["launch"]["ok"] and record["launch"]["slices_per_s"] > 0
    # The projection by hand: GAN 30 epochs, then 11 segmentation epochs at unet speed and 19 with the feedback.
    fp32 = next(p for p in record["projection"] if p["precision"] == "fp32")
    speed = {step: record["results"][f"{step} fp32"]["slices_per_s"] for step in ("gan", "unet", "ganet")}
    seconds = 30 * fp32["gan_slices_per_epoch"] / speed["gan"] + fp32["seg_slices_per_epoch"] * (
        11 / speed["unet"] + 19 / speed["ganet"]
    )
    assert abs(fp32["ganet_seg_hours_1_gpu"] - seconds / 3600) < 0.01
    assert abs(fp32["ganet_seg_hours_4_gpus"] - seconds / 3600 / 4) < 0.01
    assert "no GPU: CPU figures" in finished.stdout
