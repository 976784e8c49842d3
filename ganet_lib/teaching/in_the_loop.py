"""A student's lines in the real training loop (notebook 04): the segmentation U-Net trained briefly
twice on the run's own data, once with the student's edge map, L_adv, dynamic weights and soft Dice
(exercises 04.1-04.4) inside the kit's training step, once with the kit's, from the same weights
and batches. Correct lines give the kit's training to rounding where they first act; a wrong one makes the two
part there, which the per-step losses show even on the smoke profile, where the networks learn too
little for the validation Dice to tell anything apart. Later steps cannot judge: training amplifies
differences of rounding (on the default profile, correct functions part from the kit's by 1e-4 of
the loss 4 steps after the adversarial terms start, and by 5e-3 later).
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import torch

from ganet_lib.method.networks import load_segmentation
from ganet_lib.method.seg_data import SegSlices, seg_datasets, training_ids, validation_ids
from ganet_lib.method.train_seg import KIT_TERMS, LossTerms, SegResult, train_segmentation
from ganet_lib.run import Run
from ganet_lib.teaching.exercises import EXERCISES

SHORT_EPOCHS = 3  # about a minute for both trainings on 2 cores with the default profile
KITS = "the kit's functions"
# Two trainings with the same functions, weights and batches give the same losses; functions written
# differently but correctly round differently, and training amplifies that. So only the steps where the
# student's functions first act judge them: the first step of training (the soft Dice) and the first with
# the adversarial terms (edge map, L_adv, dynamic weights), each with the step after it (where their
# gradient has moved the weights once). Measured (2 cores, Intel Xeon): on the default profile at commit
# f462941 the notebooks' correct solutions differ from the kit's by 0, 2.5e-6, 1.2e-5, 9.1e-6, 1.7e-4 of
# the loss at the first five adversarial steps and by up to 5.0e-3 later (step 134 of 150); on the smoke
# profile L_adv with `edges.detach()` differs by 4.8e-4 of the loss at the first adversarial step and by
# up to 2e-3 after it. PART_RELATIVE is a line between the two, nearer the rounding; a wrong function
# whose effect stays below it is not told apart, and the sentence says "agree".
PART_RELATIVE = 1e-4
JUDGED_AFTER_ENTRY = 2


EXERCISE_OF = {"edge_map": "04.1", "l_adv": "04.2", "dynamic_weights": "04.3", "soft_dice_loss": "04.4"}


def whose(yours: LossTerms) -> str:
    """The label of the training with `yours`: which of the four functions are the student's. Where a
    check has not passed, `exercises.use` hands back the kit's (the exercise's reference), and the
    label says so."""
    kits = {name: (getattr(KIT_TERMS, name), EXERCISES[key].reference) for name, key in EXERCISE_OF.items()}
    names = [f.name for f in fields(LossTerms) if not any(getattr(yours, f.name) is kit for kit in kits[f.name])]
    if not names:
        return "the kit's functions again (none of yours ran)"
    if len(names) == len(fields(LossTerms)):
        return "your functions"
    return f"your {', '.join(names)} (the kit's for the rest)"


def short_trainings(
    run: Run, yours: LossTerms, epochs: int = SHORT_EPOCHS, progress: bool = False
) -> tuple[dict[str, SegResult], SegSlices]:
    """{whose(yours): ..., "the kit's functions": ...}: the ganet variant trained for `epochs` with each
    set of loss terms (the adversarial feedback on from the second epoch), and the validation slices."""
    seg = run.config.seg
    config = replace(
        run.config, seg=replace(seg, epochs=epochs, adversarial_from_epoch=min(1, seg.adversarial_from_epoch))
    )
    train_set = seg_datasets(run, training_ids(run), progress)
    val_set = seg_datasets(run, validation_ids(run), progress)

    def train(folder: str, terms: LossTerms, resume: bool) -> SegResult:
        return train_segmentation(
            train_set,
            val_set,
            out_dir=run.your_code_dir(folder),
            config=config,
            variant="ganet",
            gan_checkpoint=run.gan.best,
            resume=resume,
            progress=progress,
            loss_terms=terms,
        )

    # The student's always trains: their functions may have changed, not their names. The kit's is
    # reused when the run already holds it with these settings (a teacher's run handed to a class) and
    # its step losses (a checkpoint from before the kit kept them has none: then it trains again).
    mine = train("yours", yours, resume=False)
    kits = train("kit", KIT_TERMS, resume=True)
    if len(kits.step_losses) != len(mine.step_losses):
        kits = train("kit", KIT_TERMS, resume=False)
    return {whose(yours): mine, KITS: kits}, val_set


def _losses(results: dict[str, SegResult]) -> tuple[np.ndarray, np.ndarray]:
    """The two trainings' step losses, (steps,) each."""
    first, second = (np.asarray(result.step_losses, dtype=float) for result in results.values())
    return first, second


def _schedule(results: dict[str, SegResult]) -> tuple[int, int | None]:
    """(steps per epoch, the first step with the adversarial terms, from 1; None when none had them)."""
    result = next(iter(results.values()))
    per_epoch = len(result.step_losses) // max(len(result.history), 1)
    epoch = next((i for i, row in enumerate(result.history) if not np.isnan(row["loss_adv"])), None)
    return per_epoch, None if epoch is None else epoch * per_epoch + 1


def judged_steps(results: dict[str, SegResult]) -> list[int]:
    """The steps (from 1) where the student's functions first act: the first two of training and the first
    two with the adversarial terms (`JUDGED_AFTER_ENTRY` each)."""
    count = len(next(iter(results.values())).step_losses)
    _, adversarial = _schedule(results)
    entries = [1] + ([] if adversarial is None else [adversarial])
    return sorted({entry + k for entry in entries for k in range(JUDGED_AFTER_ENTRY) if entry + k <= count})


def largest_difference(results: dict[str, SegResult]) -> tuple[float, int]:
    """The largest |difference| between the two trainings' losses at the same step, and that step (from 1)."""
    first, second = _losses(results)
    differences = np.abs(first - second)  # (steps,)
    step = int(np.argmax(differences))
    return float(differences[step]), step + 1


def parting_sentence(results: dict[str, SegResult]) -> str:
    """Whether the two trainings part where the student's functions first act (`judged_steps`: a step
    loss differing by more than PART_RELATIVE of the loss), and what the later steps show."""
    first, second = _losses(results)
    relative = np.abs(first - second) / np.maximum(np.abs(second), 1e-12)  # (steps,)
    largest, at = largest_difference(results)
    per_epoch, adversarial = _schedule(results)
    feedback = "" if adversarial is None else f"; the adversarial terms start at step {adversarial}"
    judged = judged_steps(results)
    apart = [step for step in judged if relative[step - 1] > PART_RELATIVE]
    if apart:
        step = apart[0]
        return (
            f"the two trainings part at step {step} of {len(first)} (epoch {(step - 1) // per_epoch + 1}{feedback}), "
            f"where your functions first act: difference {abs(first[step - 1] - second[step - 1]):.4g} there, "
            f"{relative[step - 1]:.2g} of the loss (largest {largest:.4g}, at step {at}); functions equal to the "
            f"kit's up to rounding stay below {PART_RELATIVE:g} of the loss there"
        )
    steps = ", ".join(str(s) for s in judged)
    if (relative > PART_RELATIVE).any():
        later = (
            f"; later steps drift apart (largest difference {largest:.2g}, at step {at}), as training amplifies "
            "differences of rounding: they cannot tell a right function from a wrong one"
        )
    else:
        later = f", and so do all {len(first)} steps (largest difference {largest:.2g})"
    return (
        f"the two trainings agree where your functions first act (steps {steps}{feedback}): below "
        f"{PART_RELATIVE:g} of the loss, as functions equal to the kit's up to rounding give{later}"
    )


@torch.no_grad()
def predictions(results: dict[str, SegResult], dataset: SegSlices, index: int) -> dict[str, np.ndarray]:
    """Each training's predicted labels (H, W) for slice `index` of `dataset`, from its last epoch."""
    image = dataset[index][0][None]  # (1, C, H, W)
    out = {}
    for label, result in results.items():
        model, *_ = load_segmentation(result.last_checkpoint)
        out[label] = dataset.scheme.classes_to_labels(model(image).argmax(dim=1)[0].numpy())
    return out
