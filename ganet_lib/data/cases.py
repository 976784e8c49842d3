"""Finding and loading BraTS and NFBS subjects in every layout met in the wild.

BraTS (segmentation data): four modalities and a label map per subject.
- 2020: ``BraTS20_Training_001_{flair,t1,t1ce,t2,seg}.nii[.gz]``, nested in one folder per subject
  or flattened into one folder. The popular public copy names subject 355's label map
  ``W39_1998.09.19_Segm.nii``; it is accepted with a warning.
- 2021: ``BraTS2021_00000_{flair,t1,t1ce,t2,seg}.nii.gz`` (labels 1, 2, 4).
- 2023: ``BraTS-GLI-00000-000-{t1n,t1c,t2w,t2f,seg}.nii.gz`` (ET is label 3; mapped to the kit's 4).

Beside the images a subject may have a brain mask, ``<case>_brainmask.nii[.gz]`` (or any
``*brainmask*`` file in a folder holding one subject); it then defines the brain (see
`intensity`). A subject may lack modalities: `configure_cases` says which ones a run reads, and
how its label maps are numbered (`labels`).

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
from dataclasses import dataclass, field, replace
from pathlib import Path

import nibabel as nib
import numpy as np

from ganet_lib.data.intensity import brain_from_background
from ganet_lib.data.labels import LabelSurvey, default_convention, distinct_values, survey_labels, to_kit_labels
from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_write_text, fingerprint

MODALITIES = ("t1", "t1ce", "t2", "flair")  # channel order of every image array in the kit (a run may read a subset)
BRATS_AXCODES = ("L", "P", "S")  # voxel axes of the BraTS files; NFBS is reoriented to these

_NII = r"\.nii(?:\.gz)?"
# (naming, file-name pattern, modality name in the file -> kit modality)
_BRATS_PATTERNS = [
    (
        "brats2020",
        re.compile(
            rf"^(?P<case>BraTS20_(?:Training|Validation)_\d{{3}})_(?P<mod>flair|t1ce|t1|t2|seg|brainmask){_NII}$"
        ),
    ),
    ("brats2021", re.compile(rf"^(?P<case>BraTS2021_\d{{5}})_(?P<mod>flair|t1ce|t1|t2|seg|brainmask){_NII}$")),
    (
        "brats2023",
        re.compile(rf"^(?P<case>BraTS-[A-Z]+-\d{{5}}-\d{{3}})-(?P<mod>t1n|t1c|t2w|t2f|seg|brainmask){_NII}$"),
    ),
]
_MODALITY_ALIASES = {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"}
# Known defect of the widely shared BraTS 2020 copy: subject 355's label map has another name.
_SUBJECT_355_SEG = re.compile(rf"^W39_1998\.09\.19_Segm{_NII}$")
_NFBS_PATTERN = re.compile(rf"^sub-(?P<subject>A\d+)_ses-(?P<session>[A-Za-z0-9]+)_T1w_brain{_NII}$")


@dataclass(frozen=True)
class BratsCase:
    """One BraTS subject: where its files are, which of them a run reads, how its labels are numbered."""

    case_id: str  # e.g. BraTS20_Training_001; also the name of its prediction file
    naming: str  # brats2020 | brats2021 | brats2023
    images: dict[str, Path]  # kit modality name -> file; may lack modalities (validate reports it)
    label: Path | None = None  # None for a case without a label map (prediction input)
    notes: tuple[str, ...] = field(default=(), compare=False)  # warnings met while finding it
    brain_mask: Path | None = None  # a *brainmask* file beside the images, if any
    modalities: tuple[str, ...] = MODALITIES  # the channels read (data.modalities), in MODALITIES order
    convention: str | None = None  # labels.CONVENTIONS key of its data set; None: implied by the naming

    @property
    def label_convention(self) -> str:
        return self.convention or default_convention(self.naming)


def chosen_modalities(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The setting data.modalities checked and put in the kit's channel order (MODALITIES order).

    Raises:
        KitInputError: an unknown name, a repeated one, or an empty choice.
    """
    names = tuple(str(n).lower() for n in names)
    unknown = [n for n in names if n not in MODALITIES]
    if unknown or not names or len(set(names)) != len(names):
        raise KitInputError(
            f"data.modalities is {list(names)}; choose one or more of {', '.join(MODALITIES)}, each once."
        )
    return tuple(m for m in MODALITIES if m in names)


def display_modality(modalities: tuple[str, ...] | list[str]) -> str:
    """The modality figures draw label contours on: FLAIR (edema is brightest there), else T2, T1ce, T1."""
    return next(m for m in ("flair", "t2", "t1ce", "t1") if m in modalities)


def configure_cases(
    cases: list[BratsCase], modalities: tuple[str, ...] = MODALITIES, convention: str | None = None
) -> list[BratsCase]:
    """The cases as a run reads them: only the `modalities` chosen, labels read by `convention`."""
    return [replace(case, modalities=chosen_modalities(modalities), convention=convention) for case in cases]


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
    loose_masks: list[Path] = []
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
        else:
            if "brainmask" in path.name:
                loose_masks.append(path)
    for path in odd_labels:
        # The file sits in its subject's folder, which is the only way to know whose it is.
        case = path.parent.name
        if case in files and "seg" not in files[case]:
            files[case]["seg"] = path
            notes[case].append(
                f"label map of {case} is named '{path.name}' (a known defect of a public BraTS 2020 copy); using it."
            )
            warnings.warn(notes[case][-1], stacklevel=2)
    for path in loose_masks:  # a brain mask with another name: its folder's only subject owns it
        owners = {case for case, paths in files.items() if any(p.parent == path.parent for p in paths.values())}
        if len(owners) == 1 and "brainmask" not in files[next(iter(owners))]:
            files[owners.pop()]["brainmask"] = path
    if not files:
        raise KitInputError(
            f"No BraTS files found under '{root}'; expected files named like "
            "BraTS20_Training_001_t1.nii.gz (2020), BraTS2021_00000_t1.nii.gz or BraTS-GLI-00000-000-t1n.nii.gz (see "
            "data/README.md)."
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
                brain_mask=paths.get("brainmask"),
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
            f"'{path}' cannot be read as NIfTI ({type(exc).__name__}: {exc}); the file is truncated or corrupt, "
            "download it again."
        ) from exc
    return array, image.affine


def voxel_spacing(image: nib.spatialimages.SpatialImage | Path | str) -> tuple[float, float, float]:
    """The voxel size in mm along a volume's three axes, from its NIfTI header (an image or a file)."""
    if not isinstance(image, nib.spatialimages.SpatialImage):
        image = nib.load(image)
    return tuple(float(size) for size in image.header.get_zooms()[:3])


def load_label(case: BratsCase) -> np.ndarray:
    """The case's label map as uint8 in the kit's numbering: 0/1/2/4 (BraTS conventions; 2012's 3
    becomes 1, 2023's 3 becomes 4) or 0/1 (whole-tumour masks). See `labels`."""
    if case.label is None:
        raise KitInputError(f"Subject {case.case_id} has no label map (expected a *_seg file next to its images).")
    label, _ = read_volume(case.label, dtype=None)
    return to_kit_labels(label, case.label_convention, f"'{case.label}'")


def survey_cases(
    cases: list[BratsCase],
    labels: str = "auto",
    convention: str = "auto",
    cache_file: Path | None = None,
    progress: bool = True,
) -> LabelSurvey:
    """The label convention of a data set (`labels.survey_labels`), from every case's label file.

    Reading every label map takes a while on a large data set, so the values found are kept in
    `cache_file` (JSON, keyed by each file's name and `files.fingerprint`, which a copy keeps) and
    read back when unchanged.
    """
    import json

    from tqdm.auto import tqdm

    labelled = [c for c in cases if c.label is not None]
    stamps = {}
    for case in labelled:
        stamps[case.case_id] = f"{case.label.name}:{fingerprint(case.label)}"
    known = {}
    if cache_file is not None and Path(cache_file).is_file():
        saved = json.loads(Path(cache_file).read_text())
        known = {case: tuple(v["values"]) for case, v in saved.items() if stamps.get(case) == v.get("stamp")}
    todo = [c for c in labelled if c.case_id not in known]
    for case in tqdm(todo, desc="survey label maps", unit="case", disable=not progress or len(todo) < 2):
        known[case.case_id] = distinct_values(read_volume(case.label, dtype=None)[0])
    if cache_file is not None and todo:
        atomic_write_text(
            Path(cache_file),
            json.dumps({c: {"stamp": stamps[c], "values": list(v)} for c, v in known.items() if c in stamps}, indent=1),
        )
    return survey_labels(
        {c.case_id: known[c.case_id] for c in labelled},
        {c.case_id: c.naming for c in labelled},
        labels=labels,
        convention=convention,
        files={c.case_id: str(c.label) for c in labelled},
    )


def load_modalities(case: BratsCase, dtype: type | None = np.float32) -> tuple[list[np.ndarray], np.ndarray]:
    """The chosen modality volumes of a subject (`case.modalities`, in that order) and the first one's affine.

    Args:
        dtype: as in `read_volume`; None keeps each file's own dtype.

    Raises:
        KitInputError: a modality is missing, unreadable, or on another grid than the others.
    """
    missing = [m for m in case.modalities if m not in case.images]
    if missing:
        raise KitInputError(
            f"Subject {case.case_id} has no {', '.join(missing)} file, which data.modalities "
            f"({', '.join(case.modalities)}) asks for; "
            f"add the file, or leave {', '.join(missing)} out of data.modalities."
        )
    volumes = []
    affine = None
    for modality in case.modalities:
        array, file_affine = read_volume(case.images[modality], dtype)
        if volumes and array.shape != volumes[0].shape:
            raise KitInputError(
                f"'{case.images[modality]}' has shape {array.shape} but '{case.images[case.modalities[0]]}' has "
                f"{volumes[0].shape}; a subject's modalities must be co-registered on one grid."
            )
        affine = file_affine if affine is None else affine
        volumes.append(array)
    return volumes, affine


def load_case(case: BratsCase, with_label: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Load a BraTS subject.

    Returns:
        image: (C, X, Y, Z) float32, channels `case.modalities`, in the files' voxel grid;
        label: (X, Y, Z) uint8 in the kit's labels (`load_label`), or None (no label file or
            `with_label=False`);
        affine: (4, 4) of the first modality's file.
    """
    volumes, affine = load_modalities(case)
    label = load_label(case) if with_label and case.label is not None else None
    return np.stack(volumes), label, affine


def brain_mask(case: BratsCase, volumes: list[np.ndarray]) -> np.ndarray:
    """(X, Y, Z) bool brain of a subject: its *brainmask* file if it has one, else where any of its
    loaded `volumes` (`load_modalities`) differs from that volume's background constant (`intensity`).

    Raises:
        KitInputError: the mask file is on another grid, or a volume has no constant background.
    """
    if case.brain_mask is not None:
        mask, _ = read_volume(case.brain_mask, dtype=None)
        if mask.shape != volumes[0].shape:
            raise KitInputError(
                f"The brain mask '{case.brain_mask}' has shape {mask.shape} but the images have {volumes[0].shape}; "
                "it must be on their grid."
            )
        return mask != 0
    return brain_from_background(volumes, [case.images[m] for m in case.modalities])


def reorient(
    volume: np.ndarray, affine: np.ndarray, axcodes: tuple[str, str, str] = BRATS_AXCODES
) -> tuple[np.ndarray, np.ndarray]:
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

    Reads each subject's label map and its chosen modalities (for the brain, `brain_mask`).
    Whole-tumour label maps give ml_WT only; the other volumes are None (nothing to count).

    Returns:
        One dict per subject: case_id, ml_NCR, ml_ED, ml_ET, ml_WT, ml_TC, brain_slices,
        tumour_slices, empty_slices (brain slices without tumour).
    """
    from tqdm.auto import tqdm

    rows = []
    for case in tqdm(cases, desc="label statistics", unit="case", disable=not progress):
        label = load_label(case)
        volumes, affine = load_modalities(case, dtype=None)
        brain = brain_mask(case, volumes)
        voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
        ml = {value: np.count_nonzero(label == value) * voxel_ml for value in (1, 2, 4)}
        whole_tumour = case.label_convention == "whole-tumour"  # label 1 is the whole tumour
        brain_slices = np.flatnonzero(brain.any(axis=(0, 1)))
        tumour_slices = np.flatnonzero(label.any(axis=(0, 1)))
        rows.append(
            {
                "case_id": case.case_id,
                "ml_NCR": None if whole_tumour else ml[1],
                "ml_ED": None if whole_tumour else ml[2],
                "ml_ET": None if whole_tumour else ml[4],
                "ml_WT": ml[1] + ml[2] + ml[4],
                "ml_TC": None if whole_tumour else ml[1] + ml[4],
                "brain_slices": len(brain_slices),
                "tumour_slices": len(tumour_slices),
                "empty_slices": len(np.setdiff1d(brain_slices, tumour_slices)),
            }
        )
    return rows


# The paper's test split of BraTS 2020 (SPEC section 1): 36 subjects of the 369 training subjects.
PAPER_TEST_IDS = tuple(
    f"BraTS20_Training_{n:03d}"
    for n in (
        4,
        13,
        14,
        16,
        17,
        45,
        48,
        53,
        58,
        72,
        80,
        82,
        102,
        112,
        113,
        115,
        120,
        126,
        141,
        143,
        175,
        215,
        217,
        230,
        259,
        280,
        288,
        302,
        303,
        309,
        328,
        333,
        347,
        358,
        360,
        367,
    )
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
