"""GAN pre-training throughput (slices/s) at 128 x 128: the kit's data pipeline against the same
training step on tensors already in memory, side by side in one run.

- "pipeline": DataLoader over the memory-mapped slice cache (what `pretrain_gan` uses);
- "in memory": the same batches, stacked as tensors beforehand.
The pipeline's cost is the relative drop in slices/s (target: < 10 %). Where a GPU is visible the
same comparison also runs there, in fp32 and with bf16 autocast.

Usage:  .venv/bin/python benchmarks/bench_gan.py [--batches 12] [--batch-size 16] [--profile default]
Synthetic normals and caches go to benchmarks/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from ganet_lib.config import load_config
from ganet_lib.method.networks import build_gan
from ganet_lib.method.preprocess import SliceCache, build_normal_cache, gan_preprocess
from ganet_lib.method.train_gan import T1Slices, epoch_generator, train_epoch
from ganet_lib.run import setup_run

OUT = Path(__file__).resolve().parent / "out"


def measure(loader, accelerator: Accelerator, model_config, gan_config, batches: int) -> float:
    """Slices per second of `batches` training steps (after one warm-up step)."""
    generator_net, discriminator = build_gan(model_config, gan_config.seed)
    opt_g = torch.optim.Adam(generator_net.parameters(), lr=gan_config.lr, betas=(gan_config.beta1, gan_config.beta2))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=gan_config.lr, betas=(gan_config.beta1, gan_config.beta2))
    generator_net, discriminator, opt_g, opt_d = accelerator.prepare(generator_net, discriminator, opt_g, opt_d)
    counters = {"g_steps": 0, "d_steps": 0}
    rng = epoch_generator(0, 0)
    warm_up = next(iter(loader))
    train_epoch(
        generator_net, discriminator, opt_g, opt_d, [warm_up], accelerator, gan_config, rng, counters, progress=False
    )
    if accelerator.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    slices = 0
    for k, batch in enumerate(loader):  # the pipeline's loading time is inside the timing
        if k == batches:
            break
        train_epoch(
            generator_net, discriminator, opt_g, opt_d, [batch], accelerator, gan_config, rng, counters, progress=False
        )
        slices += len(batch)
    if accelerator.device.type == "cuda":
        torch.cuda.synchronize()
    return slices / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--profile", default="default", help="model widths and data of this profile; the image size is forced to 128"
    )
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    config = load_config(args.profile)
    run = setup_run(args.profile, str(OUT / f"gan-{args.profile}"), progress=False)
    settings = replace(gan_preprocess(run.config), image_size=128)

    cache = SliceCache(build_normal_cache(run.normals, run.cache_dir, settings, progress=False))
    gan = replace(config.gan, batch_size=args.batch_size)
    pipeline = DataLoader(
        T1Slices(cache), batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    in_memory = [batch.clone() for _, batch in zip(range(args.batches), pipeline)]
    print(
        f"{len(cache)} normal slices of 128 x 128; model widths of profile '{args.profile}': G "
        f"{config.model.gen_channels}, D {config.model.disc_channels}; batch {args.batch_size}"
    )

    setups = [("cpu", "no")]
    if torch.cuda.is_available():
        setups += [("cuda", "no"), ("cuda", "bf16")]
    for device, precision in setups:
        accelerator = Accelerator(cpu=device == "cpu", mixed_precision=precision)
        rates = {"pipeline": [], "in memory": []}
        for _ in range(2):  # alternate, so that background load hits both alike
            rates["pipeline"].append(measure(pipeline, accelerator, config.model, gan, args.batches))
            rates["in memory"].append(measure(in_memory, accelerator, config.model, gan, args.batches))
        best = {name: max(values) for name, values in rates.items()}
        cost = 1 - best["pipeline"] / best["in memory"]
        print(
            f"{device} {precision:>4}: pipeline {best['pipeline']:.1f} slices/s, in memory {best['in memory']:.1f} "
            f"slices/s, pipeline cost {cost:+.1%} (target < 10 %)"
        )
    if not torch.cuda.is_available():
        print("no GPU visible: the fp32 / bf16 GPU figures were not measured")


if __name__ == "__main__":
    main()
