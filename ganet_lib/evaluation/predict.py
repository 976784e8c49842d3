"""`ganet predict`: a trained U-Net applied to BraTS-layout cases, written back as NIfTI label maps.

Per case: the same pre-processing as training (brain slices, square brain box, per-volume
normalisation, resize, enhancement; no slice is dropped), slice-wise inference, then every step
undone: class probabilities are resized back to the box (bilinear), the arg-max becomes the
scheme's labels (0/1 for whole-tumour masks, the tumour written as 1),
the box is pasted into the slice, the slice is transposed back into the volume's voxel
axes, and the volume gets the input's exact shape and affine. Slices without brain are 0. The
files are numbered as the data set numbers its labels (`labels.numbering_for`): 0/1/2/4 for
2017-2021 cases, 0/1/2/3 for 2023 cases, and 4 for the resection cavity of 2024+ data.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from accelerate import PartialState
from tqdm.auto import tqdm

from ganet_lib.config import PreprocessConfig
from ganet_lib.data.cases import (
    BratsCase,
    brain_mask,
    configure_cases,
    find_brats_cases,
    load_label,
    load_modalities,
    voxel_spacing,
)
from ganet_lib.data.labels import (
    BRATS,
    CONVENTIONS,
    LabelScheme,
    from_kit_labels,
    numbering_for,
    scheme_for,
    to_kit_labels,
)
from ganet_lib.errors import KitInputError
from ganet_lib.evaluation.metrics import region_dice
from ganet_lib.evaluation.postprocess import PostProcessing, chosen_and_raw, record_path, write_record
from ganet_lib.evaluation.postprocess import choose as choose_rule
from ganet_lib.evaluation.postprocess import read_record as postprocess_record
from ganet_lib.evaluation.postprocess import rule_of as postprocess_rule
from ganet_lib.files import atomic_file
from ganet_lib.method.networks import load_segmentation
from ganet_lib.method.preprocess import preprocess_case
from ganet_lib.method.seg_data import validation_ids
from ganet_lib.run import Run


@torch.no_grad()
def predict_volume(
    model: torch.nn.Module,
    volumes: list[np.ndarray],
    settings: PreprocessConfig,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    brain: np.ndarray | None = None,
    scheme: LabelScheme = BRATS,
) -> np.ndarray:
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


def predict_cases(
    model: torch.nn.Module,
    cases: list[BratsCase],
    out_dir: Path | str,
    settings: PreprocessConfig,
    progress: bool = True,
    device: str | torch.device = "cpu",
    scheme: LabelScheme = BRATS,
    postprocessing: PostProcessing | None = None,
    raw_dir: Path | str | None = None,
    numbering: str = "auto",
) -> list[Path]:
    """Write OUT/<case>.nii.gz for every case (uint8 labels, the first modality's affine and header), atomically.

    Each case is read with its `modalities` (those the model was trained on, in that order).

    Args:
        postprocessing: applied to the arg-max before writing (`postprocess`; None: the raw arg-max).
        raw_dir: also write the raw arg-max there (RAW/<case>.nii.gz), for raw and post-processed side by side.
        numbering: the label numbering of the files (`labels.CONVENTIONS`); "auto": each case's own
            (`labels.numbering_for`: 2017-2021 cases 0/1/2/4, 2023+ cases 0/1/2/3, and 4 for the cavity).
    """
    out_dir = Path(out_dir)
    model = model.to(device).eval()
    written = []
    for case in tqdm(cases, desc="predict", unit="case", disable=not progress):
        volumes, affine = load_modalities(case, dtype=None)
        labels = predict_volume(
            model, volumes, settings=settings, device=device, brain=brain_mask(case, volumes), scheme=scheme
        )
        reference = nib.load(case.images[case.modalities[0]])
        written_as = numbering_for(case.label_convention if numbering == "auto" else numbering, scheme)
        if raw_dir is not None:
            raw = from_kit_labels(labels, written_as)
            write_labels(raw, affine, reference.header, Path(raw_dir) / f"{case.case_id}.nii.gz")
        if postprocessing is not None:
            labels = postprocessing.apply(labels, voxel_spacing(reference), scheme)
        labels = from_kit_labels(labels, written_as)
        written.append(write_labels(labels, affine, reference.header, out_dir / f"{case.case_id}.nii.gz"))
    return written


def check_numbering(numbering: str, scheme: LabelScheme) -> None:
    """Refuse a numbering that cannot hold the scheme's classes (a cavity in a pre-2024 numbering).

    Raises:
        KitInputError: in one sentence, with the numbering that would do.
    """
    if numbering != "auto" and numbering not in CONVENTIONS:
        raise KitInputError(f"--numbering is '{numbering}'; use auto or one of {', '.join(CONVENTIONS)}.")
    if scheme.name == "brats-rc" and numbering not in ("auto", "brats2024"):
        raise KitInputError(
            f"The model predicts the resection cavity, which the {numbering} numbering has no value for; use "
            "--numbering brats2024 (or auto)."
        )


def write_labels(labels: np.ndarray, affine: np.ndarray, header, path: Path) -> Path:
    """A uint8 label map as NIfTI with the case's affine and header, atomically (a temporary name, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(labels, affine, header=header)
    image.set_data_dtype(np.uint8)
    image.header.set_slope_inter(1, 0)
    with atomic_file(path) as partial:
        nib.save(image, partial)
    return path


def predict_folder(
    checkpoint: Path | str,
    input_dir: Path | str,
    out_dir: Path | str,
    progress: bool = True,
    postprocess: bool = True,
    numbering: str = "auto",
) -> list[Path]:
    """`ganet predict`: a checkpoint of `ganet train-seg`, any BraTS layout in (one case folder or a root).

    Applies the post-processing recorded beside the checkpoint (`postprocess.json`, chosen on the
    run's validation subjects) unless `postprocess` is False, and says which rule it applied. Writes
    each case in its own numbering (`numbering` "auto": implied by its file names, 2023 names 0/1/2/3)
    or in `numbering`, and says which.
    """
    model, config, _, _ = load_segmentation(checkpoint)
    modalities = config.data.modalities
    cases = configure_cases(find_brats_cases(input_dir), modalities)
    incomplete = [c.case_id for c in cases if any(m not in c.images for m in modalities)]
    if incomplete:
        raise KitInputError(
            f"Case(s) {', '.join(incomplete)} in '{input_dir}' lack a modality; this model reads "
            f"{', '.join(modalities)}."
        )
    scheme = scheme_for(config.data.labels)
    check_numbering(numbering, scheme)
    if scheme.name == "whole-tumour":
        print("this model was trained on whole-tumour masks: the tumour is written as label 1, background 0")
    else:
        used = sorted({numbering_for(c.label_convention if numbering == "auto" else numbering, scheme) for c in cases})
        print(
            "labels written in "
            + ("each case's own numbering: " if numbering == "auto" else "the numbering chosen: ")
            + "; ".join(CONVENTIONS[name] for name in used)
            + ("" if numbering != "auto" else " (--numbering chooses another)")
        )
    rule = None
    if postprocess:
        record = postprocess_record(checkpoint)
        rule = postprocess_rule(record)
        if record is None:
            print(
                f"post-processing: none recorded for this checkpoint ({record_path(checkpoint)} is missing or was "
                "made for another "
                "checkpoint); writing the raw arg-max. `ganet train-seg` chooses one on the validation subjects."
            )
        else:
            print(
                f"post-processing: {rule.describe()} (chosen on {len(record['validation_subjects'])} validation "
                f"subject(s), {record_path(checkpoint)}; "
                "--no-postprocess writes the raw arg-max)"
            )
    else:
        print("post-processing: off (--no-postprocess): writing the raw arg-max")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return predict_cases(
        model,
        cases,
        out_dir=out_dir,
        settings=config.preprocess,
        progress=progress,
        device=device,
        scheme=scheme,
        postprocessing=rule,
        numbering=numbering,
    )


def predict_and_score(
    checkpoint: Path | str,
    cases: list[BratsCase],
    out_dir: Path | str,
    progress: bool = True,
    raw_dir: Path | str | None = None,
) -> list[dict]:
    """Predict `cases` into `out_dir` (post-processed as recorded beside the checkpoint; the raw arg-max
    also into `raw_dir` when given) and score each against its label map: whole-volume Dice per
    region (3D, per subject). Returns one row per subject and kind: subject, predictions ("post-processed"
    or "raw") and each region of the label scheme.

    (The full BraTS protocol, HD95 and lesion-wise scores, is `ganet evaluate`.)
    """
    model, config, _, _ = load_segmentation(checkpoint)
    scheme = scheme_for(config.data.labels)
    rule = postprocess_rule(postprocess_record(checkpoint))
    written = predict_cases(
        model,
        cases,
        out_dir=out_dir,
        settings=config.preprocess,
        progress=progress,
        scheme=scheme,
        postprocessing=rule,
        raw_dir=raw_dir,
    )
    rows = []
    for case, path in zip(cases, written):
        truth = load_label(case)
        kinds = [("post-processed", path)] + ([("raw", Path(raw_dir) / path.name)] if raw_dir is not None else [])
        for kind, file in kinds:
            prediction = to_kit_labels(np.asarray(nib.load(file).dataobj), numbering_for(case.label_convention, scheme))
            rows.append(
                {"subject": case.case_id, "predictions": kind, **region_dice(prediction, truth, scheme.regions)}
            )
    return rows


def choose_postprocessing(run: Run, variant: str, progress: bool = True) -> dict | None:
    """The post-processing of the run's best `variant` checkpoint, chosen on the run's validation
    subjects (`postprocess.choose`) and saved beside it; reused when already chosen for this
    checkpoint. The step after `train_segmentation_for_run`, once per checkpoint.

    Never looks at a test subject (asserted). Returns the record (`postprocess.write_record`); None
    on the other processes of a distributed run, where the main process chooses.
    """
    if not PartialState().is_main_process:
        return None
    checkpoint = run.seg(variant).best
    record = postprocess_record(checkpoint)
    if record is not None:
        return record
    val_ids = validation_ids(run)
    assert not set(val_ids) & set(run.split["test"]), (
        "the post-processing must be chosen on validation subjects, never on test subjects"
    )
    model, config, _, _ = load_segmentation(checkpoint)
    scheme = scheme_for(config.data.labels)
    cases = []
    for case in tqdm(
        [c for c in run.cases if c.case_id in set(val_ids)],
        desc=f"post-processing ({variant}, validation)",
        unit="case",
        disable=not progress,
    ):
        volumes, _ = load_modalities(case, dtype=None)
        prediction = predict_volume(
            model, volumes, settings=config.preprocess, brain=brain_mask(case, volumes), scheme=scheme
        )
        cases.append((prediction, load_label(case), voxel_spacing(case.label)))
    rule, tried = choose_rule(cases, scheme)
    record = write_record(checkpoint, rule, tried, val_ids)
    chosen, raw = chosen_and_raw(record)
    print(
        f"post-processing of {checkpoint}, chosen on {len(val_ids)} validation subject(s): {rule.describe()} "
        f"(criterion {chosen['score']:.4f}; raw arg-max {raw['score']:.4f}) -> {record_path(checkpoint)}"
    )
    return record
