"""Segmentation training: GANet-Seg (U-Net + adversarial edge feedback) and its plain U-Net ablation.

Paper 4.1.3, 5.4.1 and Appendix A; SPEC section 4. One step of the `ganet` variant, numbered as
in `train_epoch`:
1. the U-Net predicts logits; L_seg = cross-entropy + Dice (Eqs. 3-4);
2. from epoch `adversarial_from_epoch` on (Eqs. 8-9), the soft tumour mask M = 1 - p(background)
   feeds three more terms: sparsity (5), size consistency (6) and the adversarial feedback (7),
   where the frozen pre-trained generator inpaints the T1 slice under M and the frozen
   discriminator scores it, weighted by the mask's edge map (11-12);
3. dynamic weights (10): lambda_i = 1 / (||grad L_i|| + eps), the gradients taken with respect to
   the U-Net's last layer (a small set of parameters every term reaches), normalised so that
   lambda_seg = 1;
4. one Adam step on sum_i lambda_i * w_i * L_i, with w = (1, alpha, adversarial_weight, gamma).

The `unet` variant is the same trainer with step 1 only: the ablation the paper lacks.

Deviation from the paper: alpha, gamma and the adversarial weight are applied *after* the
normalisation of Eq. (10). Inside the terms (as Eqs. 5-6 write them) they would cancel exactly:
lambda_i * L_i has a gradient of norm ~1 whatever constant L_i carries, so they would have no
effect at all. Applied after, the dynamic weights equalise the gradient scales and w sets the mix.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from ganet_lib.checkpoint import load_for_resume, restore_training, save_epoch, training_state
from ganet_lib.config import VARIANTS, ExperimentConfig, SegConfig, require_t1, settings_key
from ganet_lib.data.labels import LabelScheme
from ganet_lib.errors import KitInputError
from ganet_lib.method import losses
from ganet_lib.method.losses import adversarial_feedback_loss, segmentation_loss, size_loss, sparsity_loss, tumour_mask
from ganet_lib.method.networks import load_gan, model_for_config
from ganet_lib.method.seg_data import SegSlices, seg_datasets, training_ids, validation_ids
from ganet_lib.method.train_gan import epoch_generator
from ganet_lib.run import Run, TrainingFolder

TERMS = ("seg", "sparsity", "adv", "size")


def inverse_norm_weights(norms: dict[str, float], eps: float) -> dict[str, float]:
    """Eq. (10) on gradient norms: lambda_i = 1 / (norm_i + eps), divided by lambda_seg so that lambda_seg = 1."""
    inverse = {name: 1.0 / (norm + eps) for name, norm in norms.items()}  # Eq. (10)
    return {name: value / inverse["seg"] for name, value in inverse.items()}


@dataclass(frozen=True)
class LossTerms:
    """The method's steps the trainer calls, as plain functions in the signatures of exercises
    04.1-04.4: the kit's by default; notebook 04 passes a student's to train with them."""

    edge_map: Callable = losses.edge_map  # Eqs. (11)-(12): (mask (B, 1, H, W), (h, w)) -> (B, 1, h, w)
    l_adv: Callable = losses.edge_weighted_adversarial  # Eq. (7): (logits (B, 1, h, w), edges) -> scalar
    dynamic_weights: Callable = inverse_norm_weights  # Eq. (10): ({term: gradient norm}, eps) -> {term: lambda}
    soft_dice_loss: Callable = losses.dice_loss  # Eq. (4): (logits (B, C, H, W), target (B, H, W)) -> scalar


KIT_TERMS = LossTerms()


def dynamic_weights(
    terms: dict[str, torch.Tensor],
    shared: torch.Tensor,
    eps: float,
    accelerator: Accelerator,
    inverse: Callable = inverse_norm_weights,
) -> dict[str, float]:
    """Eq. (10): lambda_i = 1 / (||grad_shared L_i|| + eps), normalised so that lambda_seg = 1.

    The gradient norms are averaged over processes, so every process uses the same weights.
    """
    norms = torch.stack(
        [
            torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)[0].norm()
            if loss.requires_grad
            else torch.zeros((), device=shared.device)
            for loss in terms.values()
        ]
    )  # (n_terms,)
    norms = accelerator.reduce(norms.detach(), reduction="mean")
    return inverse(dict(zip(terms, norms.tolist())), eps)


def train_epoch(
    model,
    opt,
    loader,
    accelerator: Accelerator,
    seg: SegConfig,
    variant: str,
    epoch: int,
    gan_nets,
    rng: torch.Generator,
    progress: bool,
    loss_terms: LossTerms = KIT_TERMS,
    step_losses: list[float] | None = None,
) -> dict:
    """One pass over `loader`; returns the mean of every loss term and weight over the epoch.
    `loss_terms`: the functions of Eqs. (4), (7), (10)-(12) the step calls (the kit's, or a student's).
    `step_losses`: when given, each step's total loss (this process's batch) is appended to it."""
    model.train()
    adversarial = variant == "ganet" and epoch >= seg.adversarial_from_epoch  # Eq. (8) vs (9)
    shared = accelerator.unwrap_model(model).head.weight  # the last layer: every term reaches it
    base = {"seg": 1.0, "sparsity": seg.alpha, "adv": seg.adversarial_weight, "size": seg.gamma}
    sums: dict[str, float] = {}
    batches = 0
    for images, target, t1 in tqdm(loader, desc=f"{variant} epoch {epoch + 1}", leave=False, disable=not progress):
        with accelerator.autocast():
            # 1. Segmentation loss, Eqs. (3)-(4).
            logits = model(images)  # (B, 4, H, W)
            terms = {"seg": segmentation_loss(logits, target, dice=loss_terms.soft_dice_loss)}
            if adversarial:
                # 2. Terms on the soft tumour mask M, Eqs. (5)-(7).
                mask = tumour_mask(logits)  # (B, 1, H, W)
                noise = torch.randn(t1.shape, generator=rng).to(t1.device)
                terms["sparsity"] = sparsity_loss(mask)
                terms["adv"], _ = adversarial_feedback_loss(
                    t1, mask, *gan_nets, noise, edges_of=loss_terms.edge_map, weighted=loss_terms.l_adv
                )
                terms["size"] = size_loss(mask, target)
        if adversarial:
            # 3. Dynamic weights, Eq. (10).
            weights = dynamic_weights(
                terms, shared, eps=seg.weight_eps, accelerator=accelerator, inverse=loss_terms.dynamic_weights
            )
            total = sum(weights[k] * base[k] * terms[k] for k in terms)  # Eq. (9)
        else:
            weights = {"seg": 1.0}
            total = terms["seg"]  # Eq. (8)
        # 4. One optimiser step.
        opt.zero_grad(set_to_none=True)
        accelerator.backward(total)
        opt.step()
        for name in TERMS:
            sums[f"loss_{name}"] = sums.get(f"loss_{name}", 0.0) + (
                terms[name].item() if name in terms else float("nan")
            )
            sums[f"weight_{name}"] = sums.get(f"weight_{name}", 0.0) + weights.get(name, float("nan"))
        sums["loss_total"] = sums.get("loss_total", 0.0) + total.item()
        if step_losses is not None:
            step_losses.append(total.item())
        batches += 1
    return {name: value / max(batches, 1) for name, value in sums.items()}


@torch.no_grad()
def validation_dice(model, loader, accelerator: Accelerator, scheme: LabelScheme) -> dict[str, float]:
    """Dice per region over all validation slices together (2 sum|P n T| / (sum|P| + sum|T|)).

    Each slice's counts are gathered exactly once across processes: `gather_for_metrics`, called
    per batch, drops the duplicates that even batches pad the last one with.
    """
    model.eval()
    region_classes = scheme.region_classes()  # e.g. {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}
    rows = []
    for images, target, _ in loader:
        with accelerator.autocast():
            predicted = model(images).argmax(dim=1)  # (B, H, W)
        stats = []
        for classes in region_classes.values():
            p = torch.isin(predicted, torch.tensor(classes, device=predicted.device))
            t = torch.isin(target, torch.tensor(classes, device=target.device))
            stats += [(p & t).sum(dim=(1, 2)), p.sum(dim=(1, 2)), t.sum(dim=(1, 2))]
        # Gathered batch by batch: only at the last batch does Accelerate know which rows are padding.
        rows.append(accelerator.gather_for_metrics(torch.stack(stats, dim=1).float()))  # (B x processes, regions x 3)
    per_slice = torch.cat(rows)  # (slices, regions x 3 counts), each slice once
    totals = per_slice.sum(dim=0).cpu().view(len(region_classes), 3)
    dice = {}
    for region, (overlap, predicted_sum, true_sum) in zip(region_classes, totals.tolist()):
        dice[f"val_dice_{region}"] = 1.0 if predicted_sum + true_sum == 0 else 2 * overlap / (predicted_sum + true_sum)
    dice["val_dice_mean"] = float(np.mean([dice[f"val_dice_{r}"] for r in region_classes]))
    dice["val_slices"] = len(per_slice)
    return dice


@dataclass
class SegResult:
    last_checkpoint: Path
    best_checkpoint: Path
    history: list[dict]  # one row per epoch (metrics.csv)
    # The total loss of every optimiser step, in order (the main process's batches): two trainings from
    # the same weights and batches can be compared step by step (notebook 04). Empty for a checkpoint
    # written before the kit kept them.
    step_losses: list[float] = field(default_factory=list)


def train_segmentation(
    train_set: SegSlices,
    val_set: SegSlices,
    out_dir: Path,
    config: ExperimentConfig,  # whole: saved inside every checkpoint, so that a checkpoint alone rebuilds its U-Net
    variant: str,
    gan_checkpoint: Path | None,
    resume: bool = False,
    cpu: bool = False,
    progress: bool = True,
    max_epochs: int | None = None,
    loss_terms: LossTerms = KIT_TERMS,
) -> SegResult:
    """Train one variant into `out_dir` (last.pt, best.pt by mean validation Dice, metrics.csv).

    Args:
        gan_checkpoint: the pre-trained GAN (needed by the ganet variant).
        resume: continue from out_dir/last.pt when its settings equal these.
        loss_terms: the functions of Eqs. (4), (7), (10)-(12) the training step calls: the kit's, or a
            student's (notebook 04); other terms make other settings, so a checkpoint is never
            resumed with terms it was not trained with.
        max_epochs: stop after this many epochs in this call (tests simulate an interruption).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == "ganet":
        require_t1(config, "The ganet variant")
    seg = config.seg
    scheme = val_set.scheme
    accelerator = Accelerator(cpu=cpu, mixed_precision=seg.mixed_precision)
    folder = TrainingFolder(Path(out_dir))
    config_json = json.dumps({"variant": variant, **config.to_dict()}, sort_keys=True)
    # What the result depends on: a change elsewhere in the config (e.g. the sweep) keeps it valid.
    settings = settings_key(
        config,
        ("data", "preprocess", "model", "gan", "seg"),
        variant=variant,
        train_subjects=[c["case_id"] for c in train_set.cache.cases],
        gan_checkpoint=_file_stamp(gan_checkpoint),
        **({} if loss_terms == KIT_TERMS else {"loss_terms": _describe(loss_terms)}),
    )

    model = model_for_config(config, seg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=seg.lr, betas=(seg.beta1, seg.beta2), weight_decay=seg.weight_decay)
    # Paper 5.4.1: lr_e = lr * (1 - e / epochs) ** poly_power, stepped once per epoch. torch computes it
    # step by step, so an lr may differ from the closed form in its last bit (3e-16 relative), below
    # what the float32 Adam update can see.
    scheduler = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=seg.epochs, power=seg.poly_power)
    state = {"epoch": -1, "best_dice": -1.0, "history": []}
    step_losses: list[float] = []
    checkpoint = load_for_resume(folder.last, settings, resume, accelerator.print)
    if checkpoint is not None:
        state = restore_training(checkpoint, {"model": model, "optimizer": opt, "scheduler": scheduler}, state)
        step_losses = checkpoint.get("step_losses", torch.zeros(0)).tolist()  # absent in older checkpoints
        done = state["epoch"] + 1
        accelerator.print(
            f"{'reusing the finished' if done >= seg.epochs else f'resuming after epoch {done} of the'} {variant} "
            f"training in {folder.last}"
        )

    gan_nets = None
    if variant == "ganet":
        if gan_checkpoint is None:
            raise ValueError("the ganet variant needs a pre-trained GAN checkpoint")
        generator_net, discriminator, _ = load_gan(gan_checkpoint, config.model)
        for net in (generator_net, discriminator):
            net.requires_grad_(False)  # frozen: the GAN networks never change
        gan_nets = (generator_net.to(accelerator.device), discriminator.to(accelerator.device))

    model, opt = accelerator.prepare(model, opt)
    parts = {"model": model, "optimizer": opt, "scheduler": scheduler}  # the prepared ones, saved every epoch
    val_loader = accelerator.prepare_data_loader(DataLoader(val_set, batch_size=seg.batch_size))
    epochs_run = 0
    for epoch in range(state["epoch"] + 1, seg.epochs):
        if max_epochs is not None and epochs_run >= max_epochs:
            break
        started = time.perf_counter()
        order = torch.randperm(len(train_set), generator=epoch_generator(seg.seed, epoch)).tolist()
        loader = accelerator.prepare_data_loader(DataLoader(Subset(train_set, order), batch_size=seg.batch_size))
        rng = epoch_generator(seg.seed, epoch, 1 + accelerator.process_index)
        lr = opt.param_groups[0]["lr"]
        epoch_losses = train_epoch(
            model,
            opt,
            loader=loader,
            accelerator=accelerator,
            seg=seg,
            variant=variant,
            epoch=epoch,
            gan_nets=gan_nets,
            rng=rng,
            progress=progress,
            loss_terms=loss_terms,
            step_losses=step_losses,
        )
        scheduler.step()
        scores = validation_dice(model, val_loader, accelerator, scheme)
        improved = scores["val_dice_mean"] > state["best_dice"]
        state["best_dice"] = max(state["best_dice"], scores["val_dice_mean"])
        state["epoch"] = epoch
        state["history"].append(
            {"epoch": epoch + 1, "lr": lr, **epoch_losses, **scores, "seconds": round(time.perf_counter() - started, 2)}
        )
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            checkpoint = {
                **training_state(parts, accelerator.unwrap_model),
                "config": config_json,
                "settings": settings,
                **state,
                "step_losses": torch.tensor(step_losses, dtype=torch.float64),
            }
            save_epoch(checkpoint, folder, improved, state["history"])
            row = state["history"][-1]
            regions = " ".join(f"{region} {row[f'val_dice_{region}']:.3f}" for region in scheme.regions)
            accelerator.print(
                f"{variant} epoch {epoch + 1}/{seg.epochs}: loss {row['loss_total']:.4f} (seg {row['loss_seg']:.4f})  "
                f"val Dice {regions}  {row['seconds']:.1f} s"
            )
        epochs_run += 1
    accelerator.wait_for_everyone()
    return SegResult(folder.last, folder.best, state["history"], step_losses)


def _describe(loss_terms: LossTerms) -> dict[str, str]:
    """Which function each loss term is (module and name): part of a non-kit training's settings."""
    return {
        name: f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"
        for name, function in vars(loss_terms).items()
    }


def _file_stamp(path: Path | None) -> str | None:
    """Name and content hash of a file: a retrained GAN invalidates the segmentation; a copied run
    folder (a teacher's, handed to a class) keeps it valid."""
    if path is None:
        return None
    return f"{Path(path).name}:{hashlib.sha256(Path(path).read_bytes()).hexdigest()[:20]}"


def train_segmentation_for_run(
    run: Run,
    variant: str,
    resume: bool = False,
    cpu: bool = False,
    progress: bool = True,
    max_epochs: int | None = None,
) -> SegResult:
    """Everything `ganet train-seg` and notebook 04 do for one variant: caches, split, training
    into the run's `seg-<variant>/` (the ganet variant uses the run's GAN). Choosing the
    post-processing of the result is the caller's next step (`evaluation.predict.choose_postprocessing`)."""
    if variant == "ganet":
        require_t1(run.config, "The ganet variant")
    gan_checkpoint = run.gan.best if variant == "ganet" else None
    if gan_checkpoint is not None and not gan_checkpoint.is_file():
        raise KitInputError(
            f"The ganet variant needs the pre-trained GAN '{gan_checkpoint}'; run `ganet pretrain-gan` (notebook 03) "
            "first."
        )
    return train_segmentation(
        seg_datasets(run, training_ids(run), progress),
        seg_datasets(run, validation_ids(run), progress),
        out_dir=run.seg(variant).path,
        config=run.config,
        variant=variant,
        gan_checkpoint=gan_checkpoint,
        resume=resume,
        cpu=cpu,
        progress=progress,
        max_epochs=max_epochs,
    )
