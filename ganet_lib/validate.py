"""`ganet validate`: check a data set before anything trains on it (SPEC section 7).

Every problem is one sentence that names the file and the fix. The checks read each file once:
present, readable (not truncated), one shape and affine across a subject's files, finite
intensities, label values in the expected set.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ganet_lib.data import MODALITIES, BratsCase, NfbsSubject, find_brats_cases, find_nfbs_subjects, read_volume
from ganet_lib.errors import KitInputError

AFFINE_TOLERANCE = 1e-3  # mm; co-registered BraTS files share their affine to float precision


@dataclass
class ValidationReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    brats_cases: int = 0
    nfbs_subjects: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_array(path: Path, array: np.ndarray, problems: list[str]) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        problems.append(f"'{path}' has {int(bad.sum())} NaN or infinite voxels; re-export the volume with finite intensities.")


def validate_brats_case(case: BratsCase, require_label: bool = True) -> list[str]:
    """Problems found in one BraTS subject (empty list: fine)."""
    problems: list[str] = []
    for modality in MODALITIES:
        if modality not in case.images:
            problems.append(f"Subject {case.case_id} has no {modality} file; each subject needs {', '.join(MODALITIES)} and a label map.")
    if case.label is None and require_label:
        problems.append(f"Subject {case.case_id} has no label map (a *_seg file next to its images); add it or leave the subject out.")

    reference: tuple[Path, tuple[int, ...], np.ndarray] | None = None
    files = list(case.images.values()) + ([case.label] if case.label is not None else [])
    for path in files:
        try:
            array, affine = read_volume(path)
        except KitInputError as exc:
            problems.append(str(exc))
            continue
        if reference is None:
            reference = (path, array.shape, affine)
        elif array.shape != reference[1]:
            problems.append(f"'{path}' has shape {array.shape} but '{reference[0]}' has {reference[1]}; a subject's files must share one grid.")
        elif not np.allclose(affine, reference[2], atol=AFFINE_TOLERANCE):
            problems.append(f"'{path}' has another affine than '{reference[0]}'; a subject's files must be co-registered (same voxel-to-world mapping).")
        _check_array(path, array, problems)
        if path == case.label and np.isfinite(array).all():
            values = np.unique(array)
            unexpected = sorted(set(values.tolist()) - set(case.label_values))
            if unexpected:
                shown = ", ".join(f"{v:g}" for v in unexpected[:5])
                problems.append(
                    f"'{path}' holds label values {shown}, expected only {', '.join(map(str, case.label_values))} "
                    f"for {case.naming} data; fix the label map or the file name."
                )
    return problems


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


def validate_dataset(brats_dir: Path | str | None, nfbs_dir: Path | str | None = None, require_labels: bool = True,
                     progress: bool = True, workers: int | None = None) -> ValidationReport:
    """Check every BraTS subject under `brats_dir` and every NFBS subject under `nfbs_dir`.

    Subjects are read by `workers` threads (default: one per core, at most 8); gzip decompression
    releases the GIL, so this was 1.45-1.6x faster on 2 cores (benchmarks/bench_validate.py).
    Problems come in subject order whatever the number of threads.
    """
    report = ValidationReport()
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if brats_dir is not None:
            cases = _find_or_report(find_brats_cases, brats_dir, report.problems)
            report.brats_cases = len(cases)
            checked = pool.map(lambda case: validate_brats_case(case, require_labels), cases)
            for case, problems in zip(cases, tqdm(checked, total=len(cases), desc="validate BraTS", disable=not progress or not cases)):
                report.warnings.extend(case.notes)
                report.problems.extend(problems)
        if nfbs_dir is not None:
            subjects = _find_or_report(find_nfbs_subjects, nfbs_dir, report.problems)
            report.nfbs_subjects = len(subjects)
            checked = pool.map(validate_nfbs_subject, subjects)
            for problems in tqdm(checked, total=len(subjects), desc="validate NFBS", disable=not progress or not subjects):
                report.problems.extend(problems)
    return report
