"""GAN pre-training on normal brains (paper 4.1.1 and 5.4.2; SPEC section 4).

The idea: a generator that has only ever seen healthy tissue learns to fill a hole in a normal T1
slice with plausible normal tissue, and a discriminator learns what normal tissue looks like,
patch by patch. Later (notebook 04) the segmentation network's tumour mask is cut out of a
tumour slice and inpainted: if the mask missed part of the tumour, the remaining tumour cannot be
turned into normal tissue, and the discriminator notices.

One epoch, numbered as in `train_epoch`:
1. draw tumour-sized holes (squares, discs, irregular blobs) inside the brain of each slice;
2. generator update: inpaint, paste the hole into the slice, and minimise Eq. (2) plus
   `l1_weight` x the L1 error inside the hole (the discriminator is frozen for this step);
3. discriminator update, once per `d_every` generator updates: Eq. (1) on real slices against
   inpainted ones;
then validation (hole L1 and PSNR on held-out subjects, with the same holes every epoch), an
atomically written checkpoint, a figure of inpainted validation slices, and early stopping after
`patience` epochs without a better validation L1.

Hugging Face Accelerate runs the same code on one CPU, one GPU, or several processes
(`accelerate launch --num_processes 4 -m ganet_lib pretrain-gan ...`); holes and noise come from
generators seeded by (seed, epoch, process), so a CPU run is repeatable and a resumed run
continues exactly where the uninterrupted one would have been.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from ganet_lib.checkpoint import load_for_resume, restore_training, save_epoch, training_state
from ganet_lib.config import GanConfig, ModelConfig, require_t1, settings_key
from ganet_lib.data.cases import split_cases
from ganet_lib.method.losses import discriminator_loss, generator_adversarial_loss, hole_l1, patch_targets
from ganet_lib.method.networks import build_gan
from ganet_lib.method.preprocess import SliceCache, build_normal_cache, build_tumour_free_cache, gan_preprocess
from ganet_lib.run import Run, TrainingFolder
from ganet_lib.viz import plot_inpainting, save_figure

VALIDATION_SEED = 10_007  # the validation holes are drawn from this seed every epoch


class T1Slices(Dataset):
    """Channel `channel` of a slice cache as (1, H, W) float32 tensors in [0, 1]."""

    def __init__(self, cache: SliceCache, channel: int = 0):
        self.cache, self.channel = cache, channel

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> torch.Tensor:
        image, _ = self.cache[index]
        return torch.from_numpy(image[self.channel : self.channel + 1])


def epoch_generator(seed: int, epoch: int, process: int = 0) -> torch.Generator:
    """A torch.Generator seeded by (seed, epoch, process): repeatable, and different per process."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch * 1_009 + process)


def random_holes(brain: torch.Tensor, generator: torch.Generator, min_radius: float, max_radius: float) -> torch.Tensor:
    """One tumour-sized hole per slice, inside the brain: a square, a disc or an irregular blob.

    Args:
        brain: (B, 1, H, W) bool, True inside the brain (CPU).
        generator: source of randomness.
        min_radius, max_radius: hole radius (half-side for squares) as a fraction of H.

    Returns:
        (B, 1, H, W) float32 mask, 1 in the hole.
    """
    batch, _, height, width = brain.shape
    rows = torch.arange(height, dtype=torch.float32).view(height, 1)
    cols = torch.arange(width, dtype=torch.float32).view(1, width)
    masks = torch.zeros(batch, 1, height, width)

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * torch.rand(1, generator=generator).item()

    def disc(row: float, col: float, radius: float) -> torch.Tensor:
        return (rows - row) ** 2 + (cols - col) ** 2 <= radius**2

    for b in range(batch):
        inside = brain[b, 0].nonzero()
        if len(inside) == 0:
            continue  # an empty slice gets no hole
        row, col = inside[torch.randint(len(inside), (1,), generator=generator)][0].tolist()
        radius = uniform(min_radius, max_radius) * height
        kind = torch.randint(3, (1,), generator=generator).item()
        if kind == 0:  # square
            hole = ((rows - row).abs() <= radius) & ((cols - col).abs() <= radius)
        elif kind == 1:  # disc
            hole = disc(row, col, radius)
        else:  # blob: the union of four overlapping discs
            hole = torch.zeros(height, width, dtype=torch.bool)
            for _ in range(4):
                hole |= disc(
                    row + uniform(-0.6, 0.6) * radius, col + uniform(-0.6, 0.6) * radius, uniform(0.45, 0.8) * radius
                )
        masks[b, 0] = (hole & brain[b, 0]).float()
    return masks


def inpaint(
    generator_net: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, noise_source: torch.Generator
) -> torch.Tensor:
    """Fill the holes of `images` ((B, 1, H, W) in [0, 1]) with the generator; returns [0, 1] images.

    Pixels outside the hole are the input's; inside, the generator's output.
    """
    x = images * 2 - 1  # [0, 1] -> [-1, 1], the generator's scale (Tanh output)
    noise = torch.randn(x.shape, generator=noise_source).to(x.device) * masks
    fake = generator_net(x * (1 - masks), masks, noise)
    return ((x * (1 - masks) + fake * masks) + 1) / 2


@torch.no_grad()
def inpainting_examples(
    generator_net: torch.nn.Module, images: torch.Tensor, hole_min: float, hole_max: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random tumour-sized holes in `images` ((B, 1, H, W) in [0, 1]) and the generator's fill.

    Returns:
        masks (B, 1, H, W) and inpainted images (B, 1, H, W) in [0, 1].
    """
    rng = torch.Generator().manual_seed(seed)
    masks = random_holes((images > 0).cpu(), rng, hole_min, hole_max).to(images.device)
    return masks, inpaint(generator_net, images, masks, rng)


@dataclass
class GanResult:
    last_checkpoint: Path
    best_checkpoint: Path
    history: list[dict]  # one row per epoch (also in metrics.csv)
    stopped_early: bool


def train_epoch(
    generator_net,
    discriminator,
    opt_g,
    opt_d,
    loader,
    accelerator: Accelerator,
    gan: GanConfig,
    rng: torch.Generator,
    counters: dict,
    progress: bool,
) -> dict:
    """One pass over `loader`; returns the epoch's mean losses on this process. `counters` holds
    g_steps and d_steps, which continue across epochs (the 1-in-`d_every` rule too)."""
    generator_net.train()
    discriminator.train()
    plain_d = accelerator.unwrap_model(discriminator)
    sums = {"d_loss": 0.0, "g_adv": 0.0, "g_l1": 0.0}
    d_updates = batches = 0
    for images in tqdm(loader, desc="GAN epoch", leave=False, disable=not progress):
        # 1. Holes and noise (on the CPU, from this process's generator).
        x = images * 2 - 1  # (B, 1, H, W) in [-1, 1]
        mask = random_holes((images > 0).cpu(), rng, gan.hole_min, gan.hole_max).to(x.device)
        noise = torch.randn(x.shape, generator=rng).to(x.device) * mask
        masked = x * (1 - mask)

        # 2. Generator update. D requires no gradients when optimising G; its plain module is
        #    called so that a distributed wrapper does not wait for D gradients that never come.
        plain_d.requires_grad_(False)
        with accelerator.autocast():
            fake = generator_net(masked, mask, noise)  # (B, 1, H, W)
            composite = masked + fake * mask  # the slice with its hole filled
            fake_logits = plain_d(composite)  # (B, 1, h, w)
            fake_patches = patch_targets(mask, fake_logits)
            g_adv = generator_adversarial_loss(fake_logits, fake_patches)  # Eq. (2)
            g_l1 = hole_l1(fake, x, mask)
            g_loss = g_adv + gan.l1_weight * g_l1
        opt_g.zero_grad(set_to_none=True)
        accelerator.backward(g_loss)
        opt_g.step()
        plain_d.requires_grad_(True)
        counters["g_steps"] += 1

        # 3. Discriminator update, once per d_every generator updates (the 1st, 6th, 11th, ...).
        if (counters["g_steps"] - 1) % gan.d_every == 0:
            with accelerator.autocast():
                # Real and inpainted slices in one forward pass (InstanceNorm is per slice, so
                # nothing mixes); one pass also keeps a distributed wrapper's bookkeeping simple.
                logits = discriminator(torch.cat([x, composite.detach()]))  # (2B, 1, h, w)
                d_loss = discriminator_loss(logits[: len(x)], logits[len(x) :], fake_patches)  # Eq. (1)
            opt_d.zero_grad(set_to_none=True)
            accelerator.backward(d_loss)
            opt_d.step()
            counters["d_steps"] += 1
            sums["d_loss"] += d_loss.item()
            d_updates += 1
        sums["g_adv"] += g_adv.item()
        sums["g_l1"] += g_l1.item()
        batches += 1
    return {
        "d_loss": sums["d_loss"] / d_updates if d_updates else float("nan"),  # NaN: no D update this epoch
        "g_adv": sums["g_adv"] / max(batches, 1),
        "g_l1": sums["g_l1"] / max(batches, 1) / 2,  # on the [0, 1] intensity scale
    }


@torch.no_grad()
def validate(generator_net, loader, accelerator: Accelerator, gan: GanConfig) -> dict:
    """Hole L1 and PSNR of the generator on held-out slices (the same holes every epoch), next to
    the baseline of filling each hole with the slice's mean brain intensity. All on [0, 1]."""
    generator_net.eval()
    rng = epoch_generator(gan.val_seed + VALIDATION_SEED, 0, accelerator.process_index)
    rows = []
    for images in loader:
        mask = random_holes((images > 0).cpu(), rng, gan.hole_min, gan.hole_max).to(images.device)
        with accelerator.autocast():
            filled = inpaint(generator_net, images, mask, rng).float()
        brain_outside = (images > 0).float() * (1 - mask)
        mean_fill = (images * brain_outside).sum(dim=(1, 2, 3)) / brain_outside.sum(dim=(1, 2, 3)).clamp(min=1)
        per_slice = torch.stack(
            [
                ((filled - images).abs() * mask).sum(dim=(1, 2, 3)),  # |error| in the hole
                (((filled - images) ** 2) * mask).sum(dim=(1, 2, 3)),  # squared error in the hole
                ((mean_fill.view(-1, 1, 1, 1) - images).abs() * mask).sum(dim=(1, 2, 3)),  # baseline |error|
                mask.sum(dim=(1, 2, 3)),  # hole pixels
            ],
            dim=1,
        )  # (B, 4)
        # Gathered batch by batch: only at the last batch does Accelerate know which rows are padding.
        rows.append(accelerator.gather_for_metrics(per_slice))
    totals = torch.cat(rows).sum(dim=0).cpu()  # one row per slice, no duplicates
    pixels = totals[3].clamp(min=1)
    mse = (totals[1] / pixels).item()
    return {
        "val_hole_l1": (totals[0] / pixels).item(),
        "val_mean_fill_l1": (totals[2] / pixels).item(),
        "val_psnr": 10 * math.log10(1.0 / max(mse, 1e-12)),
    }


def pretrain_gan(
    normal_cache: Path,
    val_ids: list[str],
    out_dir: Path,
    model: ModelConfig,
    gan: GanConfig,
    config_json: str = "{}",
    settings: str = "{}",
    resume: bool = False,
    cpu: bool = False,
    progress: bool = True,
    max_epochs: int | None = None,
) -> GanResult:
    """Train the generator and discriminator on normal slices; checkpoint every epoch.

    Args:
        normal_cache: a `build_normal_cache` folder.
        val_ids: subjects of that cache held out for validation.
        out_dir: where last.pt, best.pt and metrics.csv go.
        model, gan: network and training settings.
        config_json: the resolved experiment config, stored in every checkpoint.
        resume: continue from out_dir/last.pt if it exists and was made with the same `settings`.
        cpu: force the CPU even if a GPU is visible.
        max_epochs: stop after this many epochs in this call (tests use it to simulate an interruption).
    """
    accelerator = Accelerator(cpu=cpu, mixed_precision=gan.mixed_precision)
    folder = TrainingFolder(Path(out_dir))
    all_ids = [c["case_id"] for c in SliceCache(normal_cache).cases]
    train_set = T1Slices(SliceCache(normal_cache, [i for i in all_ids if i not in set(val_ids)]))
    val_set = T1Slices(SliceCache(normal_cache, val_ids))
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(
            f"GAN pre-training needs training and validation slices; got {len(train_set)} and {len(val_set)}"
        )

    generator_net, discriminator = build_gan(model, gan.seed)
    opt_g = torch.optim.Adam(generator_net.parameters(), lr=gan.lr, betas=(gan.beta1, gan.beta2))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=gan.lr, betas=(gan.beta1, gan.beta2))
    state = {"epoch": -1, "g_steps": 0, "d_steps": 0, "best_val_l1": float("inf"), "stale_epochs": 0, "history": []}
    checkpoint = load_for_resume(folder.last, settings, resume, accelerator.print)
    if checkpoint is not None:
        state = restore_training(
            checkpoint,
            {"generator": generator_net, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d},
            state,
        )
        done = state["epoch"] + 1
        finished = done >= gan.epochs or state["stale_epochs"] >= gan.patience
        accelerator.print(
            f"{'reusing the finished' if finished else 'resuming after epoch ' + str(done) + ' of the'} GAN "
            f"pre-training in {folder.last}"
        )
    generator_net, discriminator, opt_g, opt_d = accelerator.prepare(generator_net, discriminator, opt_g, opt_d)
    parts = {
        "generator": generator_net,
        "discriminator": discriminator,
        "opt_g": opt_g,
        "opt_d": opt_d,
    }  # the prepared ones, saved every epoch
    val_loader = accelerator.prepare_data_loader(DataLoader(val_set, batch_size=gan.batch_size))
    counters = {"g_steps": state["g_steps"], "d_steps": state["d_steps"]}

    stopped_early = False
    epochs_run = 0
    for epoch in range(state["epoch"] + 1, gan.epochs):
        if state["stale_epochs"] >= gan.patience:
            stopped_early = True
            break
        if max_epochs is not None and epochs_run >= max_epochs:
            break
        started = time.perf_counter()
        # The same shuffled order on every process (Accelerate shards it); holes differ per process.
        order = torch.randperm(len(train_set), generator=epoch_generator(gan.seed, epoch)).tolist()
        loader = accelerator.prepare_data_loader(DataLoader(Subset(train_set, order), batch_size=gan.batch_size))
        rng = epoch_generator(gan.seed, epoch, 1 + accelerator.process_index)
        losses = train_epoch(
            generator_net,
            discriminator,
            opt_g=opt_g,
            opt_d=opt_d,
            loader=loader,
            accelerator=accelerator,
            gan=gan,
            rng=rng,
            counters=counters,
            progress=progress,
        )
        scores = validate(generator_net, val_loader, accelerator, gan)
        improved = scores["val_hole_l1"] < state["best_val_l1"]
        state.update(
            epoch=epoch,
            g_steps=counters["g_steps"],
            d_steps=counters["d_steps"],
            best_val_l1=min(state["best_val_l1"], scores["val_hole_l1"]),
            stale_epochs=0 if improved else state["stale_epochs"] + 1,
        )
        state["history"].append(
            {
                "epoch": epoch + 1,
                **losses,
                **scores,
                "g_steps": counters["g_steps"],
                "d_steps": counters["d_steps"],
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            checkpoint = {
                **training_state(parts, accelerator.unwrap_model),
                "config": config_json,
                "settings": settings,
                **state,
            }
            save_epoch(checkpoint, folder, improved, state["history"])
            save_inpainting_figure(
                accelerator.unwrap_model(generator_net),
                val_set,
                gan=gan,
                path=folder.epoch_figure(epoch + 1),
                device=accelerator.device,
            )
            row = state["history"][-1]
            accelerator.print(
                f"epoch {epoch + 1}/{gan.epochs}: D {row['d_loss']:.3f}  G adv {row['g_adv']:.3f}  G hole L1 "
                f"{row['g_l1']:.4f}  "
                f"val hole L1 {row['val_hole_l1']:.4f} (mean fill {row['val_mean_fill_l1']:.4f})  PSNR "
                f"{row['val_psnr']:.1f} dB  {row['seconds']:.1f} s"
            )
        epochs_run += 1
    accelerator.wait_for_everyone()
    return GanResult(folder.last, folder.best, state["history"], stopped_early)


def save_inpainting_figure(
    generator_net: torch.nn.Module, val_set: T1Slices, gan: GanConfig, path: Path, device: torch.device, count: int = 4
) -> None:
    """The generator's fill of the same `count` validation slices and holes, as a PNG (every epoch)."""
    picks = torch.linspace(0, len(val_set) - 1, min(count, len(val_set))).long().tolist()
    images = torch.stack([val_set[i] for i in picks]).to(device)  # (count, 1, H, W)
    was_training = generator_net.training
    generator_net.eval()
    masks, filled = inpainting_examples(
        generator_net, images, hole_min=gan.hole_min, hole_max=gan.hole_max, seed=gan.val_seed + VALIDATION_SEED
    )
    generator_net.train(was_training)
    fig = plot_inpainting(
        images[:, 0].float().cpu().numpy(), masks[:, 0].cpu().numpy(), filled[:, 0].float().cpu().numpy()
    )
    save_figure(fig, path, dpi=70)
    plt.close(fig)  # not shown in a notebook: it is a file


def normal_cache_for_run(run: Run, progress: bool = True) -> Path:
    """The run's normal T1 slices as `gan.normals` says: NFBS (the paper), or the tumour-free
    slices of the training subjects (never the test subjects), `gan.normal_margin` slices away from tumour."""
    config = run.config
    require_t1(config, "GAN pre-training")
    if config.gan.normals == "tumour-free-slices":
        train = set(run.split["train"])
        cases = [c for c in run.cases if c.case_id in train]
        return build_tumour_free_cache(
            cases, run.cache_dir, settings=gan_preprocess(config), margin=config.gan.normal_margin, progress=progress
        )
    return build_normal_cache(run.normals, run.cache_dir, gan_preprocess(config), progress=progress)


def pretrain_gan_for_run(
    run: Run, resume: bool = False, cpu: bool = False, progress: bool = True, max_epochs: int | None = None
) -> GanResult:
    """Everything `ganet pretrain-gan` and notebook 03 do: cache the run's normal slices, hold out
    `gan.val_fraction` of the subjects (seeded), and train into `run_dir/gan/`."""
    config = run.config
    cache = normal_cache_for_run(run, progress)
    val_ids = normal_validation_ids(run)
    settings = settings_key(config, ("data", "preprocess", "model", "gan"), normal_subjects=normal_subject_ids(run))
    return pretrain_gan(
        cache,
        val_ids,
        out_dir=run.gan.path,
        model=config.model,
        gan=config.gan,
        config_json=config.to_json(),
        settings=settings,
        resume=resume,
        cpu=cpu,
        progress=progress,
        max_epochs=max_epochs,
    )


def normal_subject_ids(run: Run) -> list[str]:
    """The subjects the GAN's normal slices come from: NFBS subjects, or the training subjects."""
    if run.config.gan.normals == "tumour-free-slices":
        return sorted(run.split["train"])
    return [s.subject_id for s in run.normals]


def normal_validation_ids(run: Run) -> list[str]:
    """The normal subjects held out for GAN validation (seeded by gan.val_seed)."""
    return split_cases(normal_subject_ids(run), run.config.gan.val_fraction, run.config.gan.val_seed)["test"]
