"""Finding and loading BraTS and NFBS subjects in every layout met in the wild.

BraTS (segmentation data): four modalities and a label map per subject.
- 2020: ``BraTS20_Training_001_{flair,t1,t1ce,t2,seg}.nii[.gz]``, nested in one folder per subject
  or flattened into one folder. The popular public copy names subject 355's label map
  ``W39_1998.09.19_Segm.nii``; it is accepted with a warning.
- 2021: ``BraTS2021_00000_{flair,t1,t1ce,t2,seg}.nii.gz`` (labels 1, 2, 4).
- 2023: ``BraTS-GLI-00000-000-{t1n,t1c,t2w,t2f,seg}.nii.gz`` (ET is label 3; mapped to the kit's 4).

NFBS (normal brains for GAN pre-training): ``<ID>/sub-<ID>_ses-NFB3_T1w_brain.nii.gz``, nested or
flat; only the skull-stripped ``_T1w_brain`` files are used. NFBS is stored in another orientation
than BraTS, so its volumes are reoriented to the BraTS voxel axes (LPS) on loading, which makes
axial slices of the two data sets look alike.
"""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from ganet_lib.errors import KitInputError

MODALITIES = ("t1", "t1ce", "t2", "flair")  # channel order of every image array in the kit
BRATS_LABELS = (0, 1, 2, 4)  # 0 background, 1 NCR/NET, 2 ED, 4 ET
REGIONS = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}  # evaluation regions, as label sets
BRATS_AXCODES = ("L", "P", "S")  # voxel axes of the BraTS files; NFBS is reoriented to these

_NII = r"\.nii(?:\.gz)?"
# (naming, file-name pattern, modality name in the file -> kit modality)
_BRATS_PATTERNS = [
    ("brats2020", re.compile(rf"^(?P<case>BraTS20_(?:Training|Validation)_\d{{3}})_(?P<mod>flair|t1ce|t1|t2|seg){_NII}$")),
    ("brats2021", re.compile(rf"^(?P<case>BraTS2021_\d{{5}})_(?P<mod>flair|t1ce|t1|t2|seg){_NII}$")),
    ("brats2023", re.compile(rf"^(?P<case>BraTS-[A-Z]+-\d{{5}}-\d{{3}})-(?P<mod>t1n|t1c|t2w|t2f|seg){_NII}$")),
]
_MODALITY_ALIASES = {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"}
# Known defect of the widely shared BraTS 2020 copy: subject 355's label map has another name.
_SUBJECT_355_SEG = re.compile(rf"^W39_1998\.09\.19_Segm{_NII}$")
_NFBS_PATTERN = re.compile(rf"^sub-(?P<subject>A\d+)_ses-(?P<session>[A-Za-z0-9]+)_T1w_brain{_NII}$")


@dataclass(frozen=True)
class BratsCase:
    """One BraTS subject: where its files are and how its labels are numbered."""

    case_id: str  # e.g. BraTS20_Training_001; also the name of its prediction file
    naming: str  # brats2020 | brats2021 | brats2023
    images: dict[str, Path]  # kit modality name -> file; may lack modalities (validate reports it)
    label: Path | None = None  # None for a case without a label map (prediction input)
    notes: tuple[str, ...] = field(default=(), compare=False)  # warnings met while finding it

    @property
    def label_values(self) -> tuple[int, ...]:
        """Label values allowed in this case's label file, before mapping to the kit's labels."""
        return (0, 1, 2, 3) if self.naming == "brats2023" else BRATS_LABELS


@dataclass(frozen=True)
class NfbsSubject:
    subject_id: str  # e.g. A00028185
    brain: Path  # the skull-stripped T1w file


def _check_folder(root: Path | str, what: str) -> Path:
    root = Path(root)
    if not root.exists():
        raise KitInputError(f"The {what} folder '{root}' does not exist; check the path (see data/README.md).")
    if not root.is_dir():
        raise KitInputError(f"'{root}' is a file, not a folder; point the {what} path at the data set's folder.")
    return root


def files_under(root: Path, pattern: str) -> list[Path]:
    """Files below `root` whose name matches `pattern`, sorted, following symbolic links to folders
    (a split made of links to case folders is a common layout; `Path.rglob` skips such links before
    Python 3.13). A folder reached twice through links is read once."""
    found, seen = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link loop, or two links to one folder
            subfolders[:] = []
            continue
        seen.add(real)
        found.extend(Path(folder) / name for name in fnmatch.filter(names, pattern))
    return sorted(found)


def find_brats_cases(root: Path | str) -> list[BratsCase]:
    """All BraTS subjects below `root` (a data set root or one subject's folder), sorted by id.

    Raises:
        KitInputError: `root` is missing, not a folder, or holds no BraTS files.
    """
    root = _check_folder(root, "BraTS")
    files: dict[str, dict[str, Path]] = defaultdict(dict)
    namings: dict[str, str] = {}
    notes: dict[str, list[str]] = defaultdict(list)
    odd_labels: list[Path] = []
    for path in files_under(root, "*.nii*"):
        if _SUBJECT_355_SEG.match(path.name):
            odd_labels.append(path)
            continue
        for naming, pattern in _BRATS_PATTERNS:
            match = pattern.match(path.name)
            if match:
                case, mod = match["case"], match["mod"]
                mod = _MODALITY_ALIASES.get(mod, mod)
                if mod in files[case]:
                    raise KitInputError(
                        f"Subject {case} has two {mod} files ('{files[case][mod]}' and '{path}'); keep one of them."
                    )
                files[case][mod] = path
                namings[case] = naming
                break
    for path in odd_labels:
        # The file sits in its subject's folder, which is the only way to know whose it is.
        case = path.parent.name
        if case in files and "seg" not in files[case]:
            files[case]["seg"] = path
            notes[case].append(f"label map of {case} is named '{path.name}' (a known defect of a public BraTS 2020 copy); using it.")
            warnings.warn(notes[case][-1], stacklevel=2)
    if not files:
        raise KitInputError(
            f"No BraTS files found under '{root}'; expected files named like "
            "BraTS20_Training_001_t1.nii.gz (2020), BraTS2021_00000_t1.nii.gz or BraTS-GLI-00000-000-t1n.nii.gz (see data/README.md)."
        )
    cases = []
    for case in sorted(files):
        paths = files[case]
        cases.append(
            BratsCase(
                case_id=case,
                naming=namings[case],
                images={m: paths[m] for m in MODALITIES if m in paths},
                label=paths.get("seg"),
                notes=tuple(notes[case]),
            )
        )
    return cases


def find_nfbs_subjects(root: Path | str) -> list[NfbsSubject]:
    """All NFBS subjects below `root` (nested ``<ID>/`` folders or flat), sorted by id.

    Raises:
        KitInputError: `root` is missing, not a folder, or holds no ``*_T1w_brain`` files.
    """
    root = _check_folder(root, "NFBS")
    subjects = {}
    for path in files_under(root, "*_T1w_brain.nii*"):
        match = _NFBS_PATTERN.match(path.name)
        if match:
            subjects.setdefault(match["subject"], path)
    if not subjects:
        raise KitInputError(
            f"No NFBS files found under '{root}'; expected skull-stripped files named like "
            "sub-A00028185_ses-NFB3_T1w_brain.nii.gz (see data/README.md)."
        )
    return [NfbsSubject(s, p) for s, p in sorted(subjects.items())]


def read_volume(path: Path, dtype: type | None = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Load one NIfTI file as (array, affine).

    Args:
        path: the .nii or .nii.gz file.
        dtype: float dtype to return (scaling applied), or None for the file's own dtype, which
            skips a conversion pass over the whole volume (the slice cache converts only its crop).

    Raises:
        KitInputError: the file cannot be read (missing, truncated, not NIfTI).
    """
    try:
        image = nib.load(path)
        if dtype is None:
            array = np.asanyarray(image.dataobj)
        else:
            array = image.get_fdata(dtype=dtype, caching="unchanged")
    except FileNotFoundError as exc:
        raise KitInputError(f"'{path}' does not exist; check the data folder.") from exc
    except Exception as exc:  # nibabel raises several types for broken files (EOFError, zlib.error, ...)
        raise KitInputError(
            f"'{path}' cannot be read as NIfTI ({type(exc).__name__}: {exc}); the file is truncated or corrupt, download it again."
        ) from exc
    return array, image.affine


def load_label(case: BratsCase) -> np.ndarray:
    """The case's label map as uint8 with the kit's labels 0/1/2/4 (2023's ET label 3 becomes 4)."""
    if case.label is None:
        raise KitInputError(f"Subject {case.case_id} has no label map (expected a *_seg file next to its images).")
    label, _ = read_volume(case.label, dtype=None)
    if label.dtype.kind == "f":  # some copies store labels as floats
        label = np.rint(label)
    label = label.astype(np.uint8)
    if case.naming == "brats2023":
        label[label == 3] = 4
    return label


def load_modalities(case: BratsCase, dtype: type | None = np.float32) -> tuple[list[np.ndarray], np.ndarray]:
    """The four modality volumes of a subject, in MODALITIES order, and the T1 file's affine.

    Args:
        dtype: as in `read_volume`; None keeps each file's own dtype.

    Raises:
        KitInputError: a modality is missing, unreadable, or on another grid than the others.
    """
    missing = [m for m in MODALITIES if m not in case.images]
    if missing:
        raise KitInputError(f"Subject {case.case_id} has no {', '.join(missing)} file; all of {', '.join(MODALITIES)} are needed.")
    volumes = []
    affine = None
    for modality in MODALITIES:
        array, file_affine = read_volume(case.images[modality], dtype)
        if volumes and array.shape != volumes[0].shape:
            raise KitInputError(
                f"'{case.images[modality]}' has shape {array.shape} but '{case.images[MODALITIES[0]]}' has "
                f"{volumes[0].shape}; the four modalities must be co-registered on one grid."
            )
        affine = file_affine if affine is None else affine
        volumes.append(array)
    return volumes, affine


def load_case(case: BratsCase, with_label: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Load a BraTS subject.

    Returns:
        image: (4, X, Y, Z) float32, channels in MODALITIES order, in the files' voxel grid;
        label: (X, Y, Z) uint8 with labels 0/1/2/4, or None (no label file or `with_label=False`);
        affine: (4, 4) of the T1 file.
    """
    volumes, affine = load_modalities(case)
    label = load_label(case) if with_label and case.label is not None else None
    return np.stack(volumes), label, affine


def reorient(volume: np.ndarray, affine: np.ndarray, axcodes: tuple[str, str, str] = BRATS_AXCODES) -> tuple[np.ndarray, np.ndarray]:
    """Permute and flip the voxel axes of a 3D volume so that they point along `axcodes`."""
    image = nib.Nifti1Image(volume, affine)
    current = nib.orientations.io_orientation(affine)
    transform = nib.orientations.ornt_transform(current, nib.orientations.axcodes2ornt(axcodes))
    reoriented = image.as_reoriented(transform)
    return np.asarray(reoriented.dataobj), reoriented.affine


def load_nfbs(subject: NfbsSubject) -> np.ndarray:
    """The subject's skull-stripped T1w as float32 (X, Y, Z), reoriented to the BraTS voxel axes."""
    volume, affine = read_volume(subject.brain)
    if volume.ndim != 3:
        raise KitInputError(f"'{subject.brain}' has {volume.ndim} dimensions; an NFBS T1w volume has 3.")
    volume, _ = reorient(volume, affine, BRATS_AXCODES)
    return volume


def axial_slices(volume: np.ndarray) -> np.ndarray:
    """(X, Y, Z) volume -> (Z, Y, X) stack of axial slices in display orientation (a view, no copy).

    For BraTS's LPS voxel axes, rows then run front to back and columns from the patient's right
    to left: ``plt.imshow(axial_slices(v)[z])`` shows the radiological view. NIfTI data comes in
    Fortran order, so this view is C-contiguous and slicing it is cheap.
    """
    return volume.T


def case_statistics(cases: list[BratsCase], progress: bool = True) -> list[dict]:
    """Per subject: tumour volumes (ml) per label and region, and how many axial slices are empty.

    Reads each subject's label map and FLAIR (the brain is where FLAIR is non-zero).

    Returns:
        One dict per subject: case_id, ml_NCR, ml_ED, ml_ET, ml_WT, ml_TC, brain_slices,
        tumour_slices, empty_slices (brain slices without tumour).
    """
    from tqdm.auto import tqdm

    rows = []
    for case in tqdm(cases, desc="label statistics", disable=not progress):
        label = load_label(case)
        flair, affine = read_volume(case.images["flair"], dtype=None)
        voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
        counts = {v: int(np.count_nonzero(label == v)) for v in (1, 2, 4)}
        brain_slices = np.flatnonzero((flair != 0).any(axis=(0, 1)))
        tumour_slices = np.flatnonzero(label.any(axis=(0, 1)))
        rows.append({
            "case_id": case.case_id,
            "ml_NCR": counts[1] * voxel_ml,
            "ml_ED": counts[2] * voxel_ml,
            "ml_ET": counts[4] * voxel_ml,
            "ml_WT": (counts[1] + counts[2] + counts[4]) * voxel_ml,
            "ml_TC": (counts[1] + counts[4]) * voxel_ml,
            "brain_slices": len(brain_slices),
            "tumour_slices": len(tumour_slices),
            "empty_slices": len(np.setdiff1d(brain_slices, tumour_slices)),
        })
    return rows


# The network's classes: 0 background, 1 NCR/NET, 2 ED, 3 ET (BraTS label 4).
CLASS_TO_LABEL = np.array([0, 1, 2, 4], dtype=np.uint8)
LABEL_TO_CLASS = np.array([0, 1, 2, 0, 3], dtype=np.uint8)  # index by label value 0..4 (3 does not occur)


def labels_to_classes(label: np.ndarray) -> np.ndarray:
    """BraTS labels 0/1/2/4 -> class indices 0/1/2/3."""
    return LABEL_TO_CLASS[label]


def classes_to_labels(classes: np.ndarray) -> np.ndarray:
    """Class indices 0/1/2/3 -> BraTS labels 0/1/2/4 (uint8)."""
    return CLASS_TO_LABEL[classes]


def region_mask(label: np.ndarray, region: str) -> np.ndarray:
    """Boolean mask of an evaluation region (WT, TC or ET) from a 0/1/2/4 label map."""
    return np.isin(label, REGIONS[region])


# The paper's test split of BraTS 2020 (SPEC section 1): 36 subjects of the 369 training subjects.
PAPER_TEST_IDS = tuple(
    f"BraTS20_Training_{n:03d}"
    for n in (4, 13, 14, 16, 17, 45, 48, 53, 58, 72, 80, 82, 102, 112, 113, 115, 120, 126, 141, 143,
              175, 215, 217, 230, 259, 280, 288, 302, 303, 309, 328, 333, 347, 358, 360, 367)
)


def split_cases(case_ids: list[str], test_fraction: float, seed: int) -> dict[str, list[str]]:
    """Train/test split of subject ids.

    The paper's own split is used when every one of its 36 test subjects is present (the full
    BraTS 2020 training set); any other data (synthetic, a subset, 2021/2023) gets a seeded random
    split with `test_fraction` of the subjects (at least one) held out. The caller saves the
    result with the run.

    Returns:
        {"train": [...], "test": [...], "rule": "paper" | "seeded"}
    """
    ids = sorted(case_ids)
    if set(PAPER_TEST_IDS) <= set(ids):
        test = list(PAPER_TEST_IDS)
        rule = "paper"
    else:
        if len(ids) < 2:
            raise KitInputError(f"A train/test split needs at least 2 subjects, found {len(ids)}.")
        n_test = min(len(ids) - 1, max(1, round(test_fraction * len(ids))))
        test = sorted(np.random.default_rng(seed).choice(ids, size=n_test, replace=False).tolist())
        rule = "seeded"
    return {"train": [i for i in ids if i not in set(test)], "test": test, "rule": rule}
