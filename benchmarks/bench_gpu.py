"""The paper profile on one GPU: throughput and memory of every training step, fp32 and bf16, one run
through `accelerate launch`, and a projection of the paper's full run. One command, one process
(plus the one launch), bounded: prepared to fit a short GPU slot.

    .venv/bin/python benchmarks/bench_gpu.py --out benchmarks/out/gpu          # on a GPU (paper profile)
    .venv/bin/python benchmarks/bench_gpu.py --out /tmp/gpu --tiny             # anywhere, about a minute

What it does, in order:
1. the machine (GPU, memory, torch and CUDA versions, bf16 support);
2. a few full-size synthetic subjects (240 x 240 x 155, four modalities) and NFBS-layout normals,
   pre-processed at the paper's 128 x 128 into slice caches (`--tiny`: 48 x 48 x 32, the smoke
   profile's 32 x 32 and widths);
3. with the profile's networks and batch (paper: 80 per process), timed steps of
   - GAN pre-training (G and D, one D update per 5 G updates),
   - segmentation, `unet` variant, and `ganet` variant with the feedback on (frozen G and D,
     Eq. (10)'s extra gradients), in fp32 and bf16: slices/s, peak GPU memory, and whether every
     loss stayed finite;
4. the `ganet` steps once more through `accelerate launch --num_processes 1` (the launch path);
5. a projection of the paper's full run (GAN 30 epochs, then GANet-Seg 30 epochs of which 19 with
   the feedback; the plain U-Net's 30 epochs for the ablation) on 1 and 4 such GPUs, from the
   measured throughput and the slice counts stated in the output. A projection, not a measurement.

Prints a table and writes `bench_gpu.json` into --out. The frozen GAN in the `ganet` steps is
freshly initialised (throughput does not depend on its training). Without a GPU every figure is
a CPU figure and says so.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelerate import Accelerator  # noqa: E402
from accelerate.state import AcceleratorState, GradientState  # noqa: E402

from ganet_lib.data.synthetic import SynthSpec, write_synthetic_dataset  # noqa: E402
from ganet_lib.method import networks, seg_data, train_gan, train_seg  # noqa: E402
from ganet_lib.method.preprocess import SliceCache, build_normal_cache, gan_preprocess  # noqa: E402
from ganet_lib.run import Run, setup_run  # noqa: E402

# Slice counts behind the projection (stated in the output): BraTS 2020 has 369 training subjects,
# 36 of them the paper's test split; the authors' Table 1 protocol counts 2379 tumour slices among
# the 36 x 155 test slices, i.e. 66.1 tumour slices per subject, and segmentation trains on tumour
# slices only (paper 5.3), 90 % of them (10 % validation). GAN: NFBS's 125 subjects x the authors'
# 128 axial slices (15..142), 80 % for training (the kit's gan.val_fraction).
SEG_TRAIN_SLICES = round(333 * 2379 / 36 * 0.9)
GAN_TRAIN_SLICES = round(125 * 128 * 0.8)


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_cores": os.cpu_count(),
        "gpu": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            gpus=torch.cuda.device_count(),
            bf16=torch.cuda.is_bf16_supported(),
        )
    return info


def prepare(out: Path, tiny: bool, cases: int, normals: int) -> Run:
    """Synthetic subjects in the BraTS / NFBS layouts, and the run (profile paper, or smoke with --tiny) over them."""
    shape = (48, 48, 32) if tiny else (240, 240, 155)
    data = out / "data"
    started = time.perf_counter()
    write_synthetic_dataset(
        data, SynthSpec(cases=cases, normals=normals, shape=shape, seed=3, compress=False), progress=False
    )
    print(
        f"data: {cases} subjects of {shape[0]} x {shape[1]} x {shape[2]} and {normals} normals in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return setup_run(
        "smoke" if tiny else "paper", str(out / "run"), str(data / "brats"), str(data / "nfbs"), progress=False
    )


def fresh_accelerator(precision: str) -> Accelerator:
    """A new Accelerator with `precision`; Accelerate keeps one state per process, so reset it first."""
    gc.collect()  # the previous measurement's networks and batches: gone before this one's peak is read
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    return Accelerator(mixed_precision=precision)


def cycled(dataset, batch_size: int, count: int) -> list:
    """`count` batches of `batch_size` items, cycling through `dataset` (a few subjects feed any number of steps)."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=False, generator=torch.Generator().manual_seed(0)
    )
    batches = []
    while len(batches) < count:
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = tuple(
                    item.repeat_interleave(math.ceil(batch_size / len(item)), 0)[:batch_size] for item in batch
                )
            else:
                batch = batch.repeat_interleave(math.ceil(batch_size / len(batch)), 0)[:batch_size]
            batches.append(batch)
            if len(batches) == count:
                break
    return batches


def timed(step, batches: list, warm_up: int, accelerator: Accelerator) -> dict:
    """Run `step` on `warm_up` batches, then time it on the rest: slices/s and peak GPU memory."""
    cuda = accelerator.device.type == "cuda"
    for batch in batches[:warm_up]:
        step([batch])
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    losses = step(batches[warm_up:])
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    slices = sum(len(b[0]) if isinstance(b, tuple) else len(b) for b in batches[warm_up:])
    return {
        "slices_per_s": round(slices / seconds, 1),
        "steps": len(batches) - warm_up,
        "seconds": round(seconds, 2),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "losses_finite": all(math.isfinite(v) for v in losses.values()),
        "losses": {k: round(v, 4) for k, v in losses.items()},
    }


def bench_gan(run: Run, precision: str, steps: int, warm_up: int) -> dict:
    config = run.config
    accelerator = fresh_accelerator(precision)
    cache = SliceCache(build_normal_cache(run.normals, run.cache_dir, gan_preprocess(config), progress=False))
    batches = [
        b.to(accelerator.device) for b in cycled(train_gan.T1Slices(cache), config.gan.batch_size, warm_up + steps)
    ]
    generator_net, discriminator = networks.build_gan(config.model, config.gan.seed)
    gan = config.gan
    opt_g = torch.optim.Adam(generator_net.parameters(), lr=gan.lr, betas=(gan.beta1, gan.beta2))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=gan.lr, betas=(gan.beta1, gan.beta2))
    generator_net, discriminator, opt_g, opt_d = accelerator.prepare(generator_net, discriminator, opt_g, opt_d)
    counters, rng = {"g_steps": 0, "d_steps": 0}, train_gan.epoch_generator(0, 0)

    def step(some: list) -> dict:  # every term: the timed steps include D updates (steps >= d_every)
        return train_gan.train_epoch(
            generator_net, discriminator, opt_g, opt_d, some, accelerator, gan, rng, counters, progress=False
        )

    result = timed(step, batches, warm_up, accelerator)
    result["d_updates"] = counters["d_steps"]
    return result


def bench_seg(run: Run, variant: str, precision: str, steps: int, warm_up: int) -> dict:
    config = run.config
    accelerator = fresh_accelerator(precision)
    dataset = seg_data.seg_datasets(run, run.split["train"], progress=False)
    batches = [
        tuple(t.to(accelerator.device) for t in b) for b in cycled(dataset, config.seg.batch_size, warm_up + steps)
    ]
    model = networks.model_for_config(config, config.seg.seed)
    opt = torch.optim.Adam(
        model.parameters(),
        lr=config.seg.lr,
        betas=(config.seg.beta1, config.seg.beta2),
        weight_decay=config.seg.weight_decay,
    )
    model, opt = accelerator.prepare(model, opt)
    gan_nets = None
    if variant == "ganet":
        generator_net, discriminator = networks.build_gan(config.model, config.gan.seed)
        for net in (generator_net, discriminator):
            net.eval().requires_grad_(False)  # frozen, as in training
        gan_nets = (generator_net.to(accelerator.device), discriminator.to(accelerator.device))
    epoch = config.seg.adversarial_from_epoch  # the feedback is on from this epoch (ganet); unet ignores it
    rng = train_gan.epoch_generator(0, 0)

    expected = ["loss_total", "loss_seg"] + (["loss_sparsity", "loss_adv", "loss_size"] if variant == "ganet" else [])

    def step(some: list) -> dict:  # the terms this variant computes (the others are NaN by design)
        losses = train_seg.train_epoch(
            model, opt, some, accelerator, config.seg, variant, epoch, gan_nets, rng, progress=False
        )
        return {k: losses[k] for k in expected}

    return timed(step, batches, warm_up, accelerator)


def projection(results: dict, precision: str) -> dict:
    """Hours for the paper's full run at the measured throughput (linear in GPUs: an assumption)."""
    gan = results[f"gan {precision}"]["slices_per_s"]
    unet = results[f"unet {precision}"]["slices_per_s"]
    ganet = results[f"ganet {precision}"]["slices_per_s"]
    # GANet-Seg: GAN 30 epochs; segmentation epochs 0-10 without the feedback (unet speed), 11-29 with it.
    seconds = 30 * GAN_TRAIN_SLICES / gan + 11 * SEG_TRAIN_SLICES / unet + 19 * SEG_TRAIN_SLICES / ganet
    ablation = 30 * SEG_TRAIN_SLICES / unet
    return {
        "precision": precision,
        "gan_slices_per_epoch": GAN_TRAIN_SLICES,
        "seg_slices_per_epoch": SEG_TRAIN_SLICES,
        "ganet_seg_hours_1_gpu": round(seconds / 3600, 2),
        "ganet_seg_hours_4_gpus": round(seconds / 3600 / 4, 2),
        "plus_unet_ablation_hours_1_gpu": round(ablation / 3600, 2),
        "plus_unet_ablation_hours_4_gpus": round(ablation / 3600 / 4, 2),
    }


def launch_once(out: Path, tiny: bool, steps: int, warm_up: int) -> dict:
    """The `ganet` steps in a child started by `accelerate launch --num_processes 1`."""
    result_file = out / "launched.json"
    result_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        *([] if torch.cuda.is_available() else ["--cpu"]),
        str(Path(__file__).resolve()),
        "--out",
        str(out),
        "--child",
        "--steps",
        str(steps),
        "--warm-up",
        str(warm_up),
        *(["--tiny"] if tiny else []),
    ]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if finished.returncode != 0 or not result_file.is_file():
        return {"ok": False, "exit": finished.returncode, "stderr_tail": finished.stderr[-1500:]}
    return {
        "ok": True,
        "wall_s_with_start_up": round(time.perf_counter() - started, 1),
        **json.loads(result_file.read_text()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the data, caches and bench_gpu.json")
    parser.add_argument(
        "--tiny", action="store_true", help="small sizes (smoke profile, 48 x 48 x 32): a CPU check in about a minute"
    )
    parser.add_argument("--cases", type=int, default=4, help="synthetic BraTS-layout subjects")
    parser.add_argument("--normals", type=int, default=2, help="synthetic NFBS-layout subjects")
    parser.add_argument(
        "--steps", type=int, default=10, help="timed steps per measurement (after --warm-up; at least 5 for a D update)"
    )
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument("--no-launch", action="store_true", help="skip the accelerate launch run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # the launched process
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    if args.child:  # data and caches exist already: the parent made them
        run = setup_run(
            "smoke" if args.tiny else "paper",
            str(args.out / "run"),
            str(args.out / "data" / "brats"),
            str(args.out / "data" / "nfbs"),
            progress=False,
        )
        result = bench_seg(run, "ganet", "no", args.steps, args.warm_up)
        (args.out / "launched.json").write_text(json.dumps(result))
        return 0

    info = machine()
    where = (
        f"{info['gpu']} ({info['gpu_memory_gb']} GB, bf16 {'yes' if info['bf16'] else 'no'})"
        if info["gpu"]
        else "no GPU: CPU figures"
    )
    print(
        f"machine: {where}; torch {info['torch']}, CUDA {info['cuda']}, Python {info['python']}, {info['cpu_cores']} "
        "CPU cores",
        flush=True,
    )
    run = prepare(args.out, args.tiny, args.cases, args.normals)
    config = run.config
    print(
        f"profile '{config.profile}': input {config.preprocess.image_size} x {config.preprocess.image_size}, "
        f"U-Net {config.model.seg_channels}, G {config.model.gen_channels}, D {config.model.disc_channels}, "
        f"batch GAN {config.gan.batch_size} / seg {config.seg.batch_size}",
        flush=True,
    )

    results = {}
    for precision in ("no", "bf16"):
        name = "fp32" if precision == "no" else "bf16"
        results[f"gan {name}"] = bench_gan(run, precision, args.steps, args.warm_up)
        for variant in ("unet", "ganet"):
            results[f"{variant} {name}"] = bench_seg(run, variant, precision, args.steps, args.warm_up)
        for key in (f"gan {name}", f"unet {name}", f"ganet {name}"):
            r = results[key]
            memory = f"{r['peak_gpu_mb']:>7} MB" if r["peak_gpu_mb"] is not None else "      - "
            print(
                f"  {key:<11} {r['slices_per_s']:>8.1f} slices/s  peak {memory}  losses finite: "
                f"{'yes' if r['losses_finite'] else 'NO'}  {r['losses']}",
                flush=True,
            )
    launched = None if args.no_launch else launch_once(args.out, args.tiny, args.steps, args.warm_up)
    if launched is not None:
        print(
            "  accelerate launch --num_processes 1, ganet fp32: "
            + (
                f"{launched['slices_per_s']:.1f} slices/s, {launched['wall_s_with_start_up']} s with start-up"
                if launched["ok"]
                else f"FAILED (exit {launched['exit']}): {launched['stderr_tail'][-300:]}"
            ),
            flush=True,
        )
    projections = [projection(results, name) for name in ("fp32", "bf16")]
    for p in projections:
        print(
            f"  projection ({p['precision']}, {p['seg_slices_per_epoch']} segmentation and "
            f"{p['gan_slices_per_epoch']} GAN slices per epoch, linear in GPUs): "
            f"GANet-Seg {p['ganet_seg_hours_1_gpu']} h on 1 GPU, {p['ganet_seg_hours_4_gpus']} h on 4; "
            f"the U-Net of the ablation {p['plus_unet_ablation_hours_1_gpu']} h / "
            f"{p['plus_unet_ablation_hours_4_gpus']} h more",
            flush=True,
        )

    record = {
        "machine": info,
        "profile": config.profile,
        "tiny": args.tiny,
        "batch": {"gan": config.gan.batch_size, "seg": config.seg.batch_size},
        "image_size": config.preprocess.image_size,
        "results": results,
        "launch": launched,
        "projection": projections,
        "note": "projection = measured slices/s x the stated slice counts, linear in GPUs; not a measurement",
        "wall_s": round(time.perf_counter() - started, 1),
    }
    (args.out / "bench_gpu.json").write_text(json.dumps(record, indent=1))
    print(f"wall {record['wall_s']} s; {args.out / 'bench_gpu.json'}")
    healthy = all(r["losses_finite"] for r in results.values()) and (launched is None or launched["ok"])
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
