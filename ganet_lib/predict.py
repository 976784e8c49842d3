"""`ganet predict`: a trained U-Net applied to BraTS-layout cases, written back as NIfTI label maps.

Per case: the same pre-processing as training (brain slices, square brain box, per-volume
normalisation, resize, enhancement; no slice is dropped), slice-wise inference, then every step
undone: class probabilities are resized back to the box (bilinear), the arg-max becomes the
scheme's labels (0/1/2/4 for BraTS labels; 0/1 for whole-tumour masks, the tumour written as 1),
the box is pasted into the slice, the slice is transposed back into the volume's voxel
axes, and the volume gets the input's exact shape and affine. Slices without brain are 0.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ganet_lib.config import PreprocessConfig
from ganet_lib.data import BratsCase, brain_mask, configure_cases, find_brats_cases, load_modalities
from ganet_lib.errors import KitInputError
from ganet_lib.labels import BRATS, LabelScheme
from ganet_lib.preprocess import preprocess_case


@torch.no_grad()
def predict_volume(model: torch.nn.Module, volumes: list[np.ndarray], settings: PreprocessConfig, batch_size: int = 32,
                   device: str | torch.device = "cpu", brain: np.ndarray | None = None, scheme: LabelScheme = BRATS) -> np.ndarray:
    """The scheme's labels for a (X, Y, Z) volume from its modalities (the model's input channels, in order).

    Args:
        brain: the subject's brain (`data.brain_mask`); None: where any volume differs from its background.

    Returns:
        (X, Y, Z) uint8, on the grid of `volumes`.
    """
    shape = volumes[0].shape
    result = preprocess_case(volumes, None, replace(settings, drop_empty_slices=False), brain)
    row0, row1, col0, col1 = result.box
    side = row1 - row0
    labels = np.zeros((shape[2], shape[1], shape[0]), np.uint8)  # (Z, Y, X): slices in display orientation
    for start in range(0, len(result.slice_index), batch_size):
        images = torch.from_numpy(result.images[start : start + batch_size].astype(np.float32)).to(device)
        probabilities = model(images).softmax(dim=1)  # (b, classes, size, size)
        probabilities = F.interpolate(probabilities, size=(side, side), mode="bilinear", align_corners=False)
        boxed = scheme.classes_to_labels(probabilities.argmax(dim=1).cpu().numpy())  # (b, side, side)
        # Paste the box back, clipping the parts of the square that lie outside the slice.
        r0, r1, c0, c1 = max(row0, 0), min(row1, shape[1]), max(col0, 0), min(col1, shape[0])
        z = result.slice_index[start : start + batch_size]
        labels[z, r0:r1, c0:c1] = boxed[:, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0]
    return np.ascontiguousarray(labels.T)  # (X, Y, Z)


def predict_cases(model: torch.nn.Module, cases: list[BratsCase], out_dir: Path | str, settings: PreprocessConfig, progress: bool = True,
                  device: str | torch.device = "cpu", scheme: LabelScheme = BRATS) -> list[Path]:
    """Write OUT/<case>.nii.gz for every case (uint8 labels, the first modality's affine and header), atomically.

    Each case is read with its `modalities` (those the model was trained on, in that order).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.to(device).eval()
    written = []
    for case in tqdm(cases, desc="predict", unit="case", disable=not progress):
        volumes, affine = load_modalities(case, dtype=None)
        labels = predict_volume(model, volumes, settings, device=device, brain=brain_mask(case, volumes), scheme=scheme)
        reference = nib.load(case.images[case.modalities[0]])
        image = nib.Nifti1Image(labels, affine, header=reference.header)
        image.set_data_dtype(np.uint8)
        image.header.set_slope_inter(1, 0)
        path = out_dir / f"{case.case_id}.nii.gz"
        partial = out_dir / f".{case.case_id}.partial-{os.getpid()}.nii.gz"
        nib.save(image, partial)
        os.replace(partial, path)
        written.append(path)
    return written


def predict_folder(checkpoint: Path | str, input_dir: Path | str, out_dir: Path | str, progress: bool = True) -> list[Path]:
    """`ganet predict`: a checkpoint of `ganet train-seg`, any BraTS layout in (one case folder or a root)."""
    from ganet_lib.train_seg import load_segmentation

    from ganet_lib.train_seg import scheme_of_config

    model, config, _, _ = load_segmentation(checkpoint)
    modalities = config.data.modalities
    cases = configure_cases(find_brats_cases(input_dir), modalities)
    incomplete = [c.case_id for c in cases if any(m not in c.images for m in modalities)]
    if incomplete:
        raise KitInputError(f"Case(s) {', '.join(incomplete)} in '{input_dir}' lack a modality; this model reads {', '.join(modalities)}.")
    scheme = scheme_of_config(config)
    if scheme.name == "whole-tumour":
        print("this model was trained on whole-tumour masks: the tumour is written as label 1, background 0")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return predict_cases(model, cases, out_dir, config.preprocess, progress, device, scheme)


def predict_and_score(checkpoint: Path | str, cases: list[BratsCase], out_dir: Path | str, progress: bool = True) -> list[dict]:
    """Predict `cases` into `out_dir` and score each against its label map: whole-volume Dice per
    region (3D, per subject). Returns one row per subject: subject and each region of the label scheme.

    (The full BraTS protocol, HD95 and lesion-wise scores, is `ganet evaluate`.)
    """
    from ganet_lib.data import load_label
    from ganet_lib.metrics import region_dice
    from ganet_lib.train_seg import load_segmentation, scheme_of_config

    model, config, _, _ = load_segmentation(checkpoint)
    scheme = scheme_of_config(config)
    written = predict_cases(model, cases, out_dir, config.preprocess, progress, scheme=scheme)
    rows = []
    for case, path in zip(cases, written):
        prediction = np.asarray(nib.load(path).dataobj)
        rows.append({"subject": case.case_id, **region_dice(prediction, load_label(case), scheme.regions)})
    return rows
