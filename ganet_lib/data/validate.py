"""`ganet validate`: check a data set before anything trains on it (SPEC section 7).

Every problem is one sentence that names the file and the fix. The checks read each file once:
present (the modalities data.modalities chooses), readable (not truncated), one shape and affine
across a subject's files, finite intensities, a brain that can be found (a brain mask file, or a
constant background: `intensity`), and label values that fit one convention for the whole data
set (`labels.survey_labels`: which one is reported; a mixture is a problem).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ganet_lib.data.cases import (
    MODALITIES,
    BratsCase,
    NfbsSubject,
    chosen_modalities,
    find_brats_cases,
    find_nfbs_subjects,
    read_volume,
)
from ganet_lib.data.intensity import background_value
from ganet_lib.data.labels import distinct_values, survey_labels
from ganet_lib.errors import KitInputError

AFFINE_TOLERANCE = 1e-3  # mm; co-registered BraTS files share their affine to float precision


@dataclass
class ValidationReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    brats_cases: int = 0
    nfbs_subjects: int = 0
    labels: str = ""  # how the label maps are numbered, one sentence (`labels.LabelSurvey.reason`)
    intensities: list[str] = field(default_factory=list)  # the storage forms met: dtype and background

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_array(path: Path, array: np.ndarray, problems: list[str]) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        problems.append(
            f"'{path}' has {int(bad.sum())} NaN or infinite voxels; re-export the volume with finite intensities."
        )


@dataclass
class CaseCheck:
    problems: list[str]
    label_values: tuple[float, ...] | None  # distinct non-zero values of its label map (None: not read)
    intensities: set[str]  # e.g. "int16, background 0"


def validate_brats_case(case: BratsCase, require_label: bool = True) -> CaseCheck:
    """What one BraTS subject's files hold, and the problems found (none: fine).

    Only the modalities in `case.modalities` are checked (data.modalities; see `data.configure_cases`).
    """
    problems: list[str] = []
    for modality in case.modalities:
        if modality not in case.images:
            problems.append(
                f"Subject {case.case_id} has no {modality} file; the chosen modalities are "
                f"{', '.join(case.modalities)} "
                "(data.modalities): add the file, or leave the modality out of data.modalities."
            )
    if case.label is None and require_label:
        problems.append(
            f"Subject {case.case_id} has no label map (a *_seg file next to its images); add it or leave the subject "
            "out."
        )

    reference: tuple[Path, tuple[int, ...], np.ndarray] | None = None
    images = [case.images[m] for m in case.modalities if m in case.images]
    files = images + [p for p in (case.label, case.brain_mask) if p is not None]
    values, intensities = None, set()
    for path in files:
        try:
            array, affine = read_volume(
                path, dtype=None if path == case.label else np.float32
            )  # labels in their own dtype: bincount
        except KitInputError as exc:
            problems.append(str(exc))
            continue
        if reference is None:
            reference = (path, array.shape, affine)
        elif array.shape != reference[1]:
            problems.append(
                f"'{path}' has shape {array.shape} but '{reference[0]}' has {reference[1]}; a subject's files must "
                "share one grid."
            )
        elif not np.allclose(affine, reference[2], atol=AFFINE_TOLERANCE):
            problems.append(
                f"'{path}' has another affine than '{reference[0]}'; a subject's files must be co-registered (same "
                "voxel-to-world mapping)."
            )
        _check_array(path, array, problems)
        if path == case.label and np.isfinite(array).all():
            values = distinct_values(array)
        elif path in images and case.brain_mask is None and np.isfinite(array).all():
            try:
                background = background_value(array, path)
                intensities.add(
                    f"{nib_dtype(path)} with {'background 0' if background == 0 else 'a non-zero constant background'}"
                )
            except KitInputError as exc:
                problems.append(str(exc))
        elif path in images:
            intensities.add(f"{nib_dtype(path)} with a brain mask file")
    return CaseCheck(problems, values, intensities)


def nib_dtype(path: Path) -> str:
    import nibabel as nib

    return str(nib.load(path).get_data_dtype())


def validate_nfbs_subject(subject: NfbsSubject) -> list[str]:
    """Problems found in one NFBS subject's skull-stripped T1w (empty list: fine)."""
    try:
        array, _ = read_volume(subject.brain)
    except KitInputError as exc:
        return [str(exc)]
    problems: list[str] = []
    if array.ndim != 3:
        problems.append(f"'{subject.brain}' has {array.ndim} dimensions; an NFBS T1w volume has 3.")
    _check_array(subject.brain, array, problems)
    return problems


def _find_or_report(finder: Callable[[Path | str], list], root: Path | str, problems: list[str]) -> list:
    try:
        return finder(root)
    except KitInputError as exc:
        problems.append(str(exc))
        return []


def validate_dataset(
    brats_dir: Path | str | None,
    nfbs_dir: Path | str | None = None,
    require_labels: bool = True,
    progress: bool = True,
    workers: int | None = None,
    modalities: tuple[str, ...] = MODALITIES,
    labels: str = "auto",
    label_convention: str = "auto",
) -> ValidationReport:
    """Check every BraTS subject under `brats_dir` and every NFBS subject under `nfbs_dir`.

    `modalities`, `labels`, `label_convention`: the settings data.modalities, data.labels and
    data.label_convention (which modalities to check; how the label maps are numbered).

    Subjects are read by `workers` threads (default: one per core, at most 8); gzip decompression
    releases the GIL, so this was 1.45-1.6x faster on 2 cores (benchmarks/bench_validate.py).
    Problems come in subject order whatever the number of threads.
    """
    report = ValidationReport()
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if brats_dir is not None:
            try:
                chosen = chosen_modalities(modalities)
            except KitInputError as exc:
                report.problems.append(str(exc))
                return report
            cases = [
                replace(c, modalities=chosen) for c in _find_or_report(find_brats_cases, brats_dir, report.problems)
            ]
            report.brats_cases = len(cases)
            checked = pool.map(lambda case: validate_brats_case(case, require_labels), cases)
            values, namings, files, forms = {}, {}, {}, set()
            for case, check in zip(
                cases, tqdm(checked, total=len(cases), desc="validate BraTS", disable=not progress or not cases)
            ):
                report.warnings.extend(case.notes)
                report.problems.extend(check.problems)
                forms |= check.intensities
                if check.label_values is not None:
                    values[case.case_id], namings[case.case_id], files[case.case_id] = (
                        check.label_values,
                        case.naming,
                        str(case.label),
                    )
            report.intensities = sorted(forms)
            if values:
                try:
                    report.labels = survey_labels(
                        values, namings, labels=labels, convention=label_convention, files=files
                    ).reason
                except KitInputError as exc:
                    report.problems.append(str(exc))
        if nfbs_dir is not None:
            subjects = _find_or_report(find_nfbs_subjects, nfbs_dir, report.problems)
            report.nfbs_subjects = len(subjects)
            checked = pool.map(validate_nfbs_subject, subjects)
            for problems in tqdm(
                checked, total=len(subjects), desc="validate NFBS", disable=not progress or not subjects
            ):
                report.problems.extend(problems)
    return report
