"""What the segmentation U-Net trains and validates on: the run's slices with their labels as
classes, the T1 channel the adversarial feedback occludes, and the validation subjects held out of
the training subjects (the test subjects are never used).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ganet_lib.data.cases import split_cases
from ganet_lib.data.labels import LabelScheme
from ganet_lib.method.preprocess import SliceCache, build_slice_cache, gan_preprocess
from ganet_lib.run import Run


class SegSlices(Dataset):
    """Slices for segmentation: (image (C, H, W), classes (H, W) int64, t1 (1, H, W) or (0, H, W)).

    `t1` is the T1 channel pre-processed as the GAN's input (see `gan.enhance_input`), from a
    second cache built with the same slices; it is what the adversarial feedback occludes. Without
    a T1 cache (a run without T1: the unet variant only) it is an empty (0, H, W) tensor.
    """

    def __init__(self, cache: SliceCache, t1_cache: SliceCache | None, scheme: LabelScheme):
        if t1_cache is not None and [(c["case_id"], c["slice_index"]) for c in cache.cases] != [
            (c["case_id"], c["slice_index"]) for c in t1_cache.cases
        ]:
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
    t1 = (
        build_slice_cache(run.cases, run.cache_dir, gan_preprocess(run.config), progress=progress)
        if "t1" in run.config.data.modalities
        else None
    )
    return images, t1


def seg_datasets(run: Run, case_ids: list[str], progress: bool = True) -> SegSlices:
    images, t1 = seg_caches(run, progress)
    return SegSlices(SliceCache(images, case_ids), SliceCache(t1, case_ids) if t1 else None, run.scheme)


def validation_ids(run: Run) -> list[str]:
    """Training subjects held out for validation (seeded by seg.val_seed; the test subjects are never used)."""
    return split_cases(run.split["train"], run.config.seg.val_fraction, run.config.seg.val_seed)["test"]


def training_ids(run: Run) -> list[str]:
    """The training subjects the U-Net learns from: the run's training split less `validation_ids`."""
    held_out = set(validation_ids(run))
    return [case_id for case_id in run.split["train"] if case_id not in held_out]


def most_tumour_slices(dataset: SegSlices, count: int) -> list[int]:
    """Indices of the `count` slices of `dataset` with the most tumour pixels, most first (the
    slices notebook 04 shows)."""
    tumour_area = [int((dataset[i][1] > 0).sum()) for i in range(len(dataset))]
    return [int(i) for i in np.argsort(tumour_area)[::-1][: min(count, len(dataset))]]
