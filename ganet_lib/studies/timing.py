"""The paper's speed claim for dropping the slices without tumour (5.4.1: 25.75 s -> 15.39 s per
batch), timed on the run's own training slices with one epoch of the plain U-Net.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ganet_lib.method.preprocess import SliceCache, build_slice_cache
from ganet_lib.method.seg_data import SegSlices, training_ids, validation_ids
from ganet_lib.method.train_seg import train_segmentation
from ganet_lib.run import Run


def time_epoch(run: Run, drop_empty_slices: bool, out_dir: Path, progress: bool = False) -> dict:
    """Seconds and slices of one epoch of the plain U-Net on the run's training slices, with or
    without the slices whose label map is empty (the paper's 25.75 s -> 15.39 s per batch claim)."""
    config = replace(
        run.config,
        preprocess=replace(run.config.preprocess, drop_empty_slices=drop_empty_slices),
        seg=replace(run.config.seg, epochs=1),
    )
    images = build_slice_cache(run.cases, run.cache_dir, config.preprocess, progress=progress)
    scheme = run.scheme
    val_ids = validation_ids(run)
    train_set = SegSlices(
        SliceCache(images, training_ids(run)), None, scheme
    )  # the plain U-Net never reads T1 separately
    val_set = SegSlices(SliceCache(images, val_ids[:1]), None, scheme)  # the timing needs a validation pass only
    result = train_segmentation(
        train_set, val_set, out_dir=out_dir, config=config, variant="unet", gan_checkpoint=None, progress=progress
    )
    return {"drop_empty_slices": drop_empty_slices, "slices": len(train_set), "seconds": result.history[0]["seconds"]}
