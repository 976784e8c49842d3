"""A student's lines in the real training loop (notebook 04): the segmentation U-Net trained briefly
twice on the run's own data, once with the student's edge map, L_adv, dynamic weights and soft Dice
(exercises 04.1-04.4) inside the kit's training step, once with the kit's, from the same weights
and batches. Correct lines give the kit's curves; a wrong one shows where it hurts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ganet_lib.method.networks import load_segmentation
from ganet_lib.method.seg_data import SegSlices, seg_datasets, training_ids, validation_ids
from ganet_lib.method.train_seg import KIT_TERMS, LossTerms, SegResult, train_segmentation
from ganet_lib.run import Run

SHORT_EPOCHS = 3  # about a minute for both trainings on 2 cores with the default profile


def short_trainings(
    run: Run, yours: LossTerms, epochs: int = SHORT_EPOCHS, progress: bool = False
) -> tuple[dict[str, SegResult], SegSlices]:
    """{"your functions": ..., "the kit's": ...}: the ganet variant trained for `epochs` with each set
    of loss terms (the adversarial feedback on from the second epoch), and the validation slices."""
    seg = run.config.seg
    config = replace(
        run.config, seg=replace(seg, epochs=epochs, adversarial_from_epoch=min(1, seg.adversarial_from_epoch))
    )
    train_set = seg_datasets(run, training_ids(run), progress)
    val_set = seg_datasets(run, validation_ids(run), progress)
    results = {}
    # The kit's short training is reused when the run already holds it with these settings (a teacher's
    # run handed to a class); the student's always trains: their functions may have changed, not their names.
    for label, folder, terms in (("your functions", "yours", yours), ("the kit's", "kit", KIT_TERMS)):
        results[label] = train_segmentation(
            train_set,
            val_set,
            out_dir=run.your_code_dir(folder),
            config=config,
            variant="ganet",
            gan_checkpoint=run.gan.best,
            resume=terms is KIT_TERMS,
            progress=progress,
            loss_terms=terms,
        )
    return results, val_set


@torch.no_grad()
def predictions(results: dict[str, SegResult], dataset: SegSlices, index: int) -> dict[str, np.ndarray]:
    """Each training's predicted labels (H, W) for slice `index` of `dataset`, from its last epoch."""
    image = dataset[index][0][None]  # (1, C, H, W)
    out = {}
    for label, result in results.items():
        model, *_ = load_segmentation(result.last_checkpoint)
        out[label] = dataset.scheme.classes_to_labels(model(image).argmax(dim=1)[0].numpy())
    return out
