"""A BraTS-layout data set rewritten in the other forms real MRI comes in (for tests and `ganet synth`).

Real collections differ from the kit's synthetic default in four ways the pipeline must survive
(`data`, `labels`, `intensity`); this module writes any data set in each of them, so that every
path is exercised on files a person can check against their source:

- `modalities`: only some of t1, t1ce, t2, flair are written (clinical protocols, demo subsets);
- `labels`: the label maps numbered as BraTS 2012-2016 (part of NCR/NET written as 3, "non-
  enhancing"), 2017-2021 (unchanged), 2023+ (4 written as 3, files named the 2023 way), 2024+
  post-treatment (as 2023, and every other subject operated on: part of its tumour core replaced
  by a resection cavity, label 4, with fluid's intensities), or as whole-tumour masks (0 / 1);
- `intensity`: `int16` (as stored by the generator and most scanners' exports), `float32` (raw
  floats at another gain), `zscore` (z-scored over the brain, the background the constant that
  0 becomes: a non-zero value), `zscore-mask` (z-scored over the brain, background 0, which brain
  voxels also cross, so a `<case>_brainmask` file is written beside the images).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from tqdm.auto import tqdm

from ganet_lib.data.cases import MODALITIES, chosen_modalities, find_brats_cases, read_volume
from ganet_lib.data.intensity import brain_from_background
from ganet_lib.errors import KitInputError

LABEL_FORMS = ("brats2017", "brats2012", "brats2023", "brats2024", "whole-tumour")
NAMED_2023 = ("brats2023", "brats2024")  # forms whose files are named the 2023 way
CAVITY = 4  # the resection cavity in the 2024+ numbering
INTENSITY_FORMS = ("int16", "float32", "zscore", "zscore-mask")
_NAMES_2023 = {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f", "seg": "seg", "brainmask": "brainmask"}


def write_label(label: np.ndarray, form: str) -> np.ndarray:
    """A 0/1/2/4 label map written in `form` (see the module docstring)."""
    if form == "brats2017":
        return label.astype(np.uint8)
    if form == "whole-tumour":
        return (label != 0).astype(np.uint8)
    out = label.astype(np.uint8).copy()
    if form in NAMED_2023:  # a cavity is added by `add_cavity`, after this
        out[label == 4] = 3
    elif form == "brats2012":
        # The part of the core on the far side of its centre along x becomes "non-enhancing" (3);
        # reading it back with the 2012 rule (3 -> NCR/NET) must give the original map.
        core = label == 1
        if core.any():
            x = np.nonzero(core)[0]
            out[core & (np.arange(label.shape[0])[:, None, None] > np.median(x))] = 3
    else:
        raise KitInputError(f"Unknown label form '{form}'; use one of {', '.join(LABEL_FORMS)}.")
    return out


def write_intensity(volume: np.ndarray, brain: np.ndarray, form: str) -> np.ndarray:
    """An int16 generator volume (0 outside `brain`) written in `form`: an affine change of its
    brain intensities, as real exports differ from each other."""
    values = volume.astype(np.float64)
    if form == "int16":
        return volume.astype(np.int16)
    if form == "float32":
        return (values * 0.37).astype(np.float32)  # another gain, zero background
    mean, sd = values[brain].mean(), values[brain].std()
    z = (values - mean) / sd
    if form == "zscore":
        return z.astype(np.float32)  # the background is (0 - mean) / sd: a non-zero constant
    if form == "zscore-mask":
        return np.where(brain, z, 0.0).astype(np.float32)
    raise KitInputError(f"Unknown intensity form '{form}'; use one of {', '.join(INTENSITY_FORMS)}.")


def rewrite_brats(
    source: Path | str,
    out: Path | str,
    modalities: tuple[str, ...] = MODALITIES,
    labels: str = "brats2017",
    intensity: str = "int16",
    progress: bool = True,
) -> Path:
    """Write every case of the BraTS-layout data set `source` into `out` in the given forms.

    The brain is where any of the source's modalities is non-zero (the generator's background is 0).
    Files keep the 2020 naming, except for `labels="brats2023"` and `"brats2024"`, which use the 2023
    naming (`BraTS-GLI-00001-000-t1n.nii.gz`), as real 2023-2026 data does.
    """
    modalities = chosen_modalities(modalities)
    if labels not in LABEL_FORMS or intensity not in INTENSITY_FORMS:
        raise KitInputError(
            f"Forms must be one of {', '.join(LABEL_FORMS)} and one of {', '.join(INTENSITY_FORMS)}; got {labels}, "
            f"{intensity}."
        )
    out = Path(out)
    for number, case in enumerate(
        tqdm(find_brats_cases(source), desc="rewrite cases", unit="case", disable=not progress), start=1
    ):
        volumes = {m: read_volume(case.images[m], dtype=None) for m in MODALITIES}
        brain = brain_from_background([array for array, _ in volumes.values()])  # the generator's background is 0
        case_id = f"BraTS-GLI-{number:05d}-000" if labels in NAMED_2023 else case.case_id
        folder = out / case_id
        folder.mkdir(parents=True, exist_ok=True)
        affine = volumes["t1"][1]
        raw_label, _ = read_volume(case.label, dtype=None)
        label = write_label(raw_label, labels)
        images = {m: array for m, (array, _) in volumes.items()}
        if labels == "brats2024" and number % 2 == 1:  # every other subject after surgery
            label, images = add_cavity(images, label, brain, np.random.default_rng(number))
        for modality in modalities:
            _save(
                write_intensity(images[modality], brain, intensity),
                affine,
                folder / _file_name(case_id, modality, labels),
            )
        _save(label, affine, folder / _file_name(case_id, "seg", labels))
        if intensity == "zscore-mask":
            _save(brain.astype(np.uint8), affine, folder / _file_name(case_id, "brainmask", labels))
    return out


def add_cavity(
    images: dict[str, np.ndarray], label: np.ndarray, brain: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A subject after surgery (2024+ numbering): the half of the tumour core (NCR and ET) on the low-x
    side of its centre becomes a resection cavity (label 4), the rest of the tumour stays beside it.
    The cavity is fluid, so its voxels get the subject's own CSF intensities in every modality: the
    median of each image over the 2 % brightest T2 voxels outside the tumour (CSF is the T2-brightest
    tissue), the quarter of them darkest on FLAIR (CSF is suppressed there), with 5 % noise. A
    made-up geometry; real cavities are irregular and may hold blood."""
    core = np.isin(label, (1, 3))
    if not core.any():
        return label, images
    x = np.nonzero(core)[0]
    cavity = core & (np.arange(label.shape[0])[:, None, None] < np.median(x))
    outside = brain & (label == 0)
    t2 = images["t2"].astype(np.float64)
    fluid = outside & (t2 >= np.quantile(t2[outside], 0.98))
    if "flair" in images:  # CSF is also dark on FLAIR: drop bright-T2 voxels that are partly tissue
        flair = images["flair"].astype(np.float64)
        darkest = fluid & (flair <= np.quantile(flair[fluid], 0.25))
        fluid = darkest if darkest.any() else fluid
    label = label.copy()
    label[cavity] = CAVITY
    written = {}
    for modality, image in images.items():
        value = float(np.median(image[fluid]))
        noisy = value * (1 + 0.05 * rng.standard_normal(int(cavity.sum())))
        changed = image.copy()
        changed[cavity] = np.round(noisy).astype(image.dtype) if image.dtype.kind in "iu" else noisy
        written[modality] = changed
    return label, written


def _file_name(case_id: str, kind: str, labels: str) -> str:
    """A file's name in the 2023 naming for 2023 labels, else the 2020 naming."""
    return f"{case_id}-{_NAMES_2023[kind]}.nii.gz" if labels in NAMED_2023 else f"{case_id}_{kind}.nii.gz"


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
