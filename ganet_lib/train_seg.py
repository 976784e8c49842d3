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

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from ganet_lib.checkpoint import load_checkpoint, load_for_resume, restore_training, save_epoch, training_state
from ganet_lib.config import ExperimentConfig, ModelConfig, SegConfig, require_t1, settings_key
from ganet_lib.data import split_cases
from ganet_lib.errors import KitInputError
from ganet_lib.labels import LabelScheme, scheme_for
from ganet_lib.losses import adversarial_feedback_loss, segmentation_loss, size_loss, sparsity_loss, tumour_mask
from ganet_lib.models import SegmentationUNet
from ganet_lib.preprocess import SliceCache, build_slice_cache
from ganet_lib.run import Run
from ganet_lib.train_gan import epoch_generator, gan_preprocess, load_gan

VARIANTS = ("ganet", "unet")
TERMS = ("seg", "sparsity", "adv", "size")


def scheme_of_config(config: ExperimentConfig) -> LabelScheme:
    """The label scheme a run trains on (data.labels, resolved by `run.setup_run`; see `labels.scheme_for`)."""
    return scheme_for(config.data.labels)


class SegSlices(Dataset):
    """Slices for segmentation: (image (C, H, W), classes (H, W) int64, t1 (1, H, W) or (0, H, W)).

    `t1` is the T1 channel pre-processed as the GAN's input (see `gan.enhance_input`), from a
    second cache built with the same slices; it is what the adversarial feedback occludes. Without
    a T1 cache (a run without T1: the unet variant only) it is an empty (0, H, W) tensor.
    """

    def __init__(self, cache: SliceCache, t1_cache: SliceCache | None, scheme: LabelScheme):
        if t1_cache is not None and [(c["case_id"], c["slice_index"]) for c in cache.cases] != [(c["case_id"], c["slice_index"]) for c in t1_cache.cases]:
            raise ValueError("the image cache and the T1 cache hold different slices")
        self.cache, self.t1_cache, self.scheme = cache, t1_cache, scheme
        self.t1_channel = t1_cache.channels.index("t1") if t1_cache is not None else None

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int):
        image, label = self.cache[index]
        classes = torch.from_numpy(self.scheme.labels_to_classes(label).astype(np.int64))
        if self.t1_cache is None:
            return torch.from_numpy(image), classes, torch.zeros((0, *image.shape[1:]))
        t1, _ = self.t1_cache[index]
        return torch.from_numpy(image), classes, torch.from_numpy(t1[self.t1_channel : self.t1_channel + 1])


def seg_caches(run: Run, progress: bool = True) -> tuple[Path, Path | None]:
    """The run's segmentation cache (its modalities and pre-processing) and the aligned cache of
    the GAN's pre-processing that the T1 channel comes from (None when the run has no T1)."""
    images = build_slice_cache(run.cases, run.cache_dir, run.config.preprocess, progress=progress)
    t1 = build_slice_cache(run.cases, run.cache_dir, gan_preprocess(run.config), progress=progress) if "t1" in run.config.data.modalities else None
    return images, t1


def seg_datasets(run: Run, case_ids: list[str], progress: bool = True) -> SegSlices:
    images, t1 = seg_caches(run, progress)
    return SegSlices(SliceCache(images, case_ids), SliceCache(t1, case_ids) if t1 else None, scheme_of_config(run.config))


def validation_ids(run: Run) -> list[str]:
    """Training subjects held out for validation (seeded by seg.val_seed; the test subjects are never used)."""
    return split_cases(run.split["train"], run.config.seg.val_fraction, run.config.seg.val_seed)["test"]


def poly_lr_factor(epoch: int, epochs: int, power: float) -> float:
    """lr_e / lr_0 = (1 - e / E) ** power (paper 5.4.1)."""
    return (1 - epoch / epochs) ** power


def dynamic_weights(terms: dict[str, torch.Tensor], shared: torch.Tensor, eps: float, accelerator: Accelerator) -> dict[str, float]:
    """Eq. (10): lambda_i = 1 / (||grad_shared L_i|| + eps), normalised so that lambda_seg = 1.

    The gradient norms are averaged over processes, so every process uses the same weights.
    """
    norms = torch.stack([
        torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)[0].norm()
        if loss.requires_grad else torch.zeros((), device=shared.device)
        for loss in terms.values()
    ])  # (n_terms,)
    norms = accelerator.reduce(norms.detach(), reduction="mean")
    return inverse_norm_weights(dict(zip(terms, norms.tolist())), eps)


def inverse_norm_weights(norms: dict[str, float], eps: float) -> dict[str, float]:
    """Eq. (10) on gradient norms: lambda_i = 1 / (norm_i + eps), divided by lambda_seg so that lambda_seg = 1."""
    inverse = {name: 1.0 / (norm + eps) for name, norm in norms.items()}  # Eq. (10)
    return {name: value / inverse["seg"] for name, value in inverse.items()}


def train_epoch(model, opt, loader, accelerator: Accelerator, seg: SegConfig, variant: str, epoch: int, gan_nets, rng: torch.Generator, progress: bool) -> dict:
    """One pass over `loader`; returns the mean of every loss term and weight over the epoch."""
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
            terms = {"seg": segmentation_loss(logits, target)}
            if adversarial:
                # 2. Terms on the soft tumour mask M, Eqs. (5)-(7).
                mask = tumour_mask(logits)  # (B, 1, H, W)
                noise = torch.randn(t1.shape, generator=rng).to(t1.device)
                terms["sparsity"] = sparsity_loss(mask)
                terms["adv"], _ = adversarial_feedback_loss(t1, mask, *gan_nets, noise)
                terms["size"] = size_loss(mask, target)
        if adversarial:
            # 3. Dynamic weights, Eq. (10).
            weights = dynamic_weights(terms, shared, seg.weight_eps, accelerator)
            total = sum(weights[k] * base[k] * terms[k] for k in terms)  # Eq. (9)
        else:
            weights = {"seg": 1.0}
            total = terms["seg"]  # Eq. (8)
        # 4. One optimiser step.
        opt.zero_grad(set_to_none=True)
        accelerator.backward(total)
        opt.step()
        for name in TERMS:
            sums[f"loss_{name}"] = sums.get(f"loss_{name}", 0.0) + (terms[name].item() if name in terms else float("nan"))
            sums[f"weight_{name}"] = sums.get(f"weight_{name}", 0.0) + weights.get(name, float("nan"))
        sums["loss_total"] = sums.get("loss_total", 0.0) + total.item()
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
    history: list[dict]


def build_model(model: ModelConfig, seed: int, in_channels: int = 4, num_classes: int = 4) -> SegmentationUNet:
    """The segmentation U-Net: one input channel per chosen modality, one output per class of the label scheme."""
    torch.manual_seed(seed)
    return SegmentationUNet(channels=model.seg_channels, activation=model.seg_activation, in_channels=in_channels, num_classes=num_classes)


def model_for_config(config: ExperimentConfig, seed: int) -> SegmentationUNet:
    return build_model(config.model, seed, len(config.data.modalities), scheme_of_config(config).num_classes)


def train_segmentation(
    train_set: SegSlices,
    val_set: SegSlices,
    out_dir: Path,
    config: ExperimentConfig,
    variant: str,
    gan_checkpoint: Path | None,
    resume: bool = False,
    cpu: bool = False,
    progress: bool = True,
    max_epochs: int | None = None,
) -> SegResult:
    """Train one variant into `out_dir` (last.pt, best.pt by mean validation Dice, metrics.csv).

    Args:
        gan_checkpoint: the pre-trained GAN (needed by the ganet variant).
        resume: continue from out_dir/last.pt when its settings equal these.
        max_epochs: stop after this many epochs in this call (tests simulate an interruption).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == "ganet":
        require_t1(config, "The ganet variant")
    seg = config.seg
    scheme = scheme_of_config(config)
    accelerator = Accelerator(cpu=cpu, mixed_precision=seg.mixed_precision)
    out_dir = Path(out_dir)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    config_json = json.dumps({"variant": variant, **config.to_dict()}, sort_keys=True)
    # What the result depends on: a change elsewhere in the config (e.g. the sweep) keeps it valid.
    settings = settings_key(config, ("data", "preprocess", "model", "gan", "seg"), variant=variant,
                            train_subjects=[c["case_id"] for c in train_set.cache.cases], gan_checkpoint=_file_stamp(gan_checkpoint))

    model = model_for_config(config, seg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=seg.lr, betas=(seg.beta1, seg.beta2), weight_decay=seg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: poly_lr_factor(e, seg.epochs, seg.poly_power))
    state = {"epoch": -1, "best_dice": -1.0, "history": []}
    checkpoint = load_for_resume(last_path, settings, resume, accelerator.print)
    if checkpoint is not None:
        state = restore_training(checkpoint, {"model": model, "optimizer": opt, "scheduler": scheduler}, state)
        done = state["epoch"] + 1
        accelerator.print(f"{'reusing the finished' if done >= seg.epochs else f'resuming after epoch {done} of the'} {variant} training in {last_path}")

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
        losses = train_epoch(model, opt, loader, accelerator, seg, variant, epoch, gan_nets, rng, progress)
        scheduler.step()
        scores = validation_dice(model, val_loader, accelerator, scheme)
        improved = scores["val_dice_mean"] > state["best_dice"]
        state["best_dice"] = max(state["best_dice"], scores["val_dice_mean"])
        state["epoch"] = epoch
        state["history"].append({"epoch": epoch + 1, "lr": lr, **losses, **scores, "seconds": round(time.perf_counter() - started, 2)})
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            checkpoint = {**training_state(parts, accelerator.unwrap_model), "config": config_json, "settings": settings, **state}
            save_epoch(checkpoint, out_dir, improved, state["history"])
            row = state["history"][-1]
            regions = " ".join(f"{region} {row[f'val_dice_{region}']:.3f}" for region in scheme.regions)
            accelerator.print(
                f"{variant} epoch {epoch + 1}/{seg.epochs}: loss {row['loss_total']:.4f} (seg {row['loss_seg']:.4f})  "
                f"val Dice {regions}  {row['seconds']:.1f} s"
            )
        epochs_run += 1
    accelerator.wait_for_everyone()
    return SegResult(last_path, best_path, state["history"])


def _file_stamp(path: Path | None) -> str | None:
    """Name, size and modification time of a file: a retrained GAN invalidates the segmentation."""
    if path is None:
        return None
    stat = Path(path).stat()
    return f"{Path(path).name}:{stat.st_size}:{stat.st_mtime_ns}"


def train_segmentation_for_run(run: Run, variant: str, resume: bool = False, cpu: bool = False, progress: bool = True, max_epochs: int | None = None) -> SegResult:
    """Everything `ganet train-seg` and notebook 04 do for one variant: caches, split, training
    into `run_dir/seg-<variant>/` (the ganet variant uses `run_dir/gan/best.pt`)."""
    if variant == "ganet":
        require_t1(run.config, "The ganet variant")
    gan_checkpoint = run.run_dir / "gan" / "best.pt" if variant == "ganet" else None
    if gan_checkpoint is not None and not gan_checkpoint.is_file():
        raise KitInputError(f"The ganet variant needs the pre-trained GAN '{gan_checkpoint}'; run `ganet pretrain-gan` (notebook 03) first.")
    val_ids = validation_ids(run)
    train_ids = [i for i in run.split["train"] if i not in set(val_ids)]
    train_set = seg_datasets(run, train_ids, progress)
    val_set = seg_datasets(run, val_ids, progress)
    result = train_segmentation(train_set, val_set, run.run_dir / f"seg-{variant}", run.config, variant, gan_checkpoint, resume, cpu, progress, max_epochs)
    if PartialState().is_main_process:  # the post-processing of best.pt, chosen on the validation subjects (once per checkpoint)
        from ganet_lib.predict import choose_postprocessing

        choose_postprocessing(run, variant, progress)
    return result


def load_segmentation(checkpoint_path: Path | str) -> tuple[SegmentationUNet, ExperimentConfig, str, dict]:
    """The U-Net of a checkpoint (eval mode, CPU), the config it was trained with, its variant, and the checkpoint."""
    from ganet_lib.config import config_from_json

    checkpoint = load_checkpoint(checkpoint_path)
    values = json.loads(checkpoint["config"])
    variant = values.pop("variant")
    config = config_from_json(json.dumps(values), str(checkpoint_path))
    model = model_for_config(config, seed=0)
    model.load_state_dict(checkpoint["model"])
    return model.eval(), config, variant, checkpoint


@torch.no_grad()
def feedback_views(model: torch.nn.Module, gan_nets: tuple, dataset: SegSlices, indices: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    """What the adversarial feedback sees for some slices, for figures.

    Returns:
        {"image": FLAIR or the display channel (N, H, W), "truth": labels (N, H, W), "prediction":
         labels (N, H, W), "mask": M (N, H, W), "edges": (N, h, w), "inpainted": T1 (N, H, W), "d_map": (N, h, w)}
    """
    from ganet_lib.data import display_modality

    model.eval()
    images, target, t1 = (torch.stack(items) for items in zip(*(dataset[i] for i in indices)))
    logits = model(images)
    mask = tumour_mask(logits)
    noise = torch.randn(t1.shape, generator=torch.Generator().manual_seed(seed))
    _, extras = adversarial_feedback_loss(t1, mask, *gan_nets, noise)
    return {
        "image": images[:, dataset.cache.channels.index(display_modality(dataset.cache.channels))].numpy(),
        "truth": dataset.scheme.classes_to_labels(target.numpy()),
        "prediction": dataset.scheme.classes_to_labels(logits.argmax(dim=1).numpy()),
        "mask": mask[:, 0].numpy(),
        "edges": extras["edges"][:, 0].numpy(),
        "inpainted": extras["inpainted"][:, 0].numpy(),
        "d_map": extras["d_map"][:, 0].numpy(),
        "scheme": dataset.scheme,  # how to colour the labels
    }


def degrade_mask(mask: np.ndarray, fraction: float, mode: str, direction: np.ndarray) -> np.ndarray:
    """A (H, W) bool tumour mask with `fraction` of its area missed or added.

    `miss`: the part of the tumour furthest along `direction` (a unit 2-vector) is dropped, as a
    segmentation that stops short of one side; `over`: the mask grows into the tissue around it,
    nearest pixels first, by `fraction` of its area.
    """
    from scipy import ndimage

    area = int(mask.sum())
    count = int(round(fraction * area))
    if count == 0 or area == 0:
        return mask.copy()
    if mode == "miss":
        rows, cols = np.nonzero(mask)
        order = np.argsort(rows * direction[0] + cols * direction[1])[::-1]  # furthest along `direction` first
        out = mask.copy()
        out[rows[order[:count]], cols[order[:count]]] = False
        return out
    if mode == "over":
        distance = ndimage.distance_transform_edt(~mask)
        outside = np.flatnonzero(~mask.ravel())
        nearest = outside[np.argsort(distance.ravel()[outside], kind="stable")[:count]]
        out = mask.copy().ravel()
        out[nearest] = True
        return out.reshape(mask.shape)
    raise ValueError(f"mode must be miss or over, got {mode!r}")


@torch.no_grad()
def feedback_response(gan_nets: tuple, dataset: SegSlices, fractions: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
                      modes: tuple[str, ...] = ("miss", "over"), seed: int = 0, batch_size: int = 64) -> list[dict]:
    """L_adv (Eq. 7, the frozen G and D) of the true tumour masks, degraded step by step.

    For every slice of `dataset` with tumour, the true whole-tumour mask is degraded (`degrade_mask`:
    a part missed, or grown into normal tissue) and scored as the U-Net's mask would be. The mechanism
    works if L_adv rises with the missed fraction. The same noise and the same direction per slice
    for every fraction, so the curve shows the masks' effect only.

    Returns:
        one row per mode and fraction: mode, fraction, l_adv (mean over slices), slices.
    """
    from ganet_lib.losses import adversarial_feedback_loss

    generator_net, discriminator = gan_nets
    picks = [i for i in range(len(dataset)) if bool((dataset[i][1] > 0).any())]
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, len(picks))
    rows = []
    for mode in modes:
        for fraction in fractions:
            losses = []
            for start in range(0, len(picks), batch_size):
                chunk = picks[start : start + batch_size]
                t1 = torch.stack([dataset[i][2] for i in chunk])  # (b, 1, H, W)
                masks = np.stack([
                    degrade_mask(dataset[i][1].numpy() > 0, fraction, mode, np.array([np.sin(a), np.cos(a)]))
                    for i, a in zip(chunk, angles[start : start + batch_size])
                ])[:, None].astype(np.float32)  # (b, 1, H, W)
                noise = torch.randn(t1.shape, generator=torch.Generator().manual_seed(seed + start))
                loss, _ = adversarial_feedback_loss(t1, torch.from_numpy(masks), generator_net, discriminator, noise, per_slice=True)
                losses.append(loss)
            rows.append({"mode": mode, "fraction": fraction, "l_adv": float(torch.cat(losses).mean()), "slices": len(picks)})
    return rows


def feedback_rises(rows: list[dict]) -> tuple[float, bool]:
    """Whether L_adv rises with the missed fraction in `feedback_response` rows: the least-squares
    slope of L_adv against the fraction (per unit fraction), and "rises" = a positive slope and
    L_adv at the largest fraction above L_adv at 0."""
    missed = sorted((r for r in rows if r["mode"] == "miss"), key=lambda r: r["fraction"])
    fractions, values = np.array([r["fraction"] for r in missed]), np.array([r["l_adv"] for r in missed])
    slope = float(np.polyfit(fractions, values, 1)[0])
    return slope, bool(slope > 0 and values[-1] > values[0])


def time_epoch(run: Run, drop_empty_slices: bool, out_dir: Path, progress: bool = False) -> dict:
    """Seconds and slices of one epoch of the plain U-Net on the run's training slices, with or
    without the slices whose label map is empty (the paper's 25.75 s -> 15.39 s per batch claim)."""
    from dataclasses import replace

    config = replace(run.config, preprocess=replace(run.config.preprocess, drop_empty_slices=drop_empty_slices), seg=replace(run.config.seg, epochs=1))
    images = build_slice_cache(run.cases, run.cache_dir, config.preprocess, progress=progress)
    scheme = scheme_of_config(config)
    val_ids = validation_ids(run)
    train_ids = [i for i in run.split["train"] if i not in set(val_ids)]
    train_set = SegSlices(SliceCache(images, train_ids), None, scheme)  # the plain U-Net never reads T1 separately
    val_set = SegSlices(SliceCache(images, val_ids[:1]), None, scheme)  # the timing needs a validation pass only
    result = train_segmentation(train_set, val_set, out_dir, config, "unet", None, progress=progress)
    return {"drop_empty_slices": drop_empty_slices, "slices": len(train_set), "seconds": result.history[0]["seconds"]}
