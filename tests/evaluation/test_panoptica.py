"""The kit's BraTS 2025+ evaluation against the official one (brats-evaluation 0.0.10 on panoptica 2.1.7).

The official package is the oracle: it cannot live in the kit's environment (it pins numpy < 2.3
and pandas < 3), so a session fixture finds a virtual environment holding it
($GANET_BRATS_EVAL_VENV, else a cache folder it builds with pip). Without one (no network) the
oracle tests are skipped and the terminal summary says so (root conftest.py).
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ganet_lib.evaluation.panoptica import (
    COLUMNS,
    HD95_PENALTY,
    brats_panoptica_scores,
    missing_prediction_row,
    panoptica_table,
    score_folders,
)

ORACLE_PACKAGES = ("brats-evaluation==0.0.10", "panoptica==2.1.7")
ORACLE_CACHE = Path.home() / ".cache" / "ganet-kit" / "brats-evaluation-0.0.10"
COMPLETE = ".complete"  # written last into a built cache venv
ORACLE_SKIP = "official BraTS evaluation (brats-evaluation 0.0.10) not available"  # conftest.py looks for this
SHAPE = (40, 48, 36)


# --- the oracle ----------------------------------------------------------------------------------


def _build_oracle(folder: Path) -> str | None:
    """Build the oracle's virtual environment in `folder` (in place: a venv's scripts name their own
    folder, so it cannot be moved), marked complete last; None, or why it failed."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True, timeout=120)
        pip = subprocess.run(
            [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", *ORACLE_PACKAGES],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as error:
        shutil.rmtree(folder, ignore_errors=True)
        return f"building a venv failed ({error})"
    if pip.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        return f"pip install {' '.join(ORACLE_PACKAGES)} failed: {pip.stderr.strip().splitlines()[-1:]}"
    (folder / COMPLETE).write_text(" ".join(ORACLE_PACKAGES) + "\n")
    return None


@pytest.fixture(scope="session")
def oracle() -> Path:
    """The bin/ folder of a venv with brats-evaluate and brats-parse-metrics."""
    configured = os.environ.get("GANET_BRATS_EVAL_VENV")
    folder = Path(configured) if configured else ORACLE_CACHE
    if configured and not (folder / "bin" / "brats-evaluate").is_file():
        pytest.skip(f"{ORACLE_SKIP}: GANET_BRATS_EVAL_VENV={configured} has no bin/brats-evaluate")
    if not configured and not (folder / COMPLETE).is_file():  # absent, or a build that was interrupted
        failure = _build_oracle(folder)
        if failure:
            pytest.skip(f"{ORACLE_SKIP}: {failure}; set GANET_BRATS_EVAL_VENV to a venv holding it")
    return folder / "bin"


def official_table(oracle: Path, reference_dir: Path, prediction_dir: Path, work: Path) -> list[dict]:
    """brats-evaluate --config gli, then brats-parse-metrics seg; the CSV's rows as read back."""
    summary, table = work / "summary.json", work / "table.csv"
    for command in (
        ["brats-evaluate", "--config", "gli", "--ref_path", reference_dir, "--pred_path", prediction_dir],
        ["brats-parse-metrics", "seg", "--json_path", summary, "--output_csv_path", table],
    ):
        extra = ["--summary_json", summary] if command[0] == "brats-evaluate" else []
        subprocess.run(
            [str(oracle / command[0]), *map(str, command[1:]), *map(str, extra)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    with table.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- label maps in the real form ----------------------------------------------------------------


def ellipsoid(centre, radii) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, size) for size in SHAPE)]
    return sum(((axis - c) / r) ** 2 for axis, c, r in zip(grid, centre, radii)) <= 1.0


def tumour_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(truth, prediction), labels 1 NETC, 2 SNFH, 3 ET, 4 RC: two tumours (SNFH around ET around
    NETC, so lesions of different labels touch), a cavity against one of them, a lone ET lesion,
    speckle; the prediction shifted by a voxel, one core missed, a false positive, its own speckle."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(SHAPE, np.uint8)
    centres = [(11, 13, 11), (27, 33, 22)]
    for centre in centres:
        centre = np.array(centre) + rng.integers(-2, 3, 3)
        truth[ellipsoid(centre, rng.uniform(4.5, 7, 3))] = 2
        truth[ellipsoid(centre + 1, rng.uniform(2.5, 3.5, 3))] = 3
        truth[ellipsoid(centre + 1, (1.6, 1.6, 1.6))] = 1
    cavity = ellipsoid(np.array(centres[0]) + (0, 9, 0), (3, 3.5, 3)) & (truth == 0)
    truth[cavity] = 4
    truth[ellipsoid((33, 8, 8), (2, 2, 2))] = 3
    speckle = tuple(rng.integers(0, size, 6) for size in SHAPE)
    truth[speckle] = rng.integers(1, 5, 6)

    prediction = np.roll(truth, 1, axis=int(rng.integers(0, 3)))
    prediction[ellipsoid(np.array(centres[1]) + 1, (2.5, 2.5, 2.5)) & (prediction == 1)] = 3  # core missed
    prediction[ellipsoid((6, 40, 30), (2.5, 2, 2))] = 3  # false positive
    prediction[ellipsoid((34, 40, 8), (2, 3, 2))] = 4  # cavity where there is none
    speckle = tuple(rng.integers(0, size, 10) for size in SHAPE)
    prediction[speckle] = rng.integers(0, 5, 10)
    return truth, prediction


def subjects() -> dict[str, tuple[np.ndarray | None, np.ndarray, tuple[float, float, float]]]:
    """subject id -> (prediction or None for a missing file, truth, spacing)."""
    empty = np.zeros(SHAPE, np.uint8)
    truth_1, prediction_1 = tumour_pair(1)
    truth_2, prediction_2 = tumour_pair(2)
    truth_3, prediction_3 = tumour_pair(3)
    snfh_only = np.where(truth_1 == 2, 2, 0).astype(np.uint8)
    apart_truth, apart_prediction = empty.copy(), empty.copy()
    apart_truth[ellipsoid((10, 10, 10), (3, 3, 3))] = 3  # ET on both sides that never touches
    apart_prediction[ellipsoid((30, 36, 26), (3, 2, 3))] = 3
    return {
        "00001-000": (prediction_1, truth_1, (1.0, 1.0, 1.0)),
        "00002-000": (prediction_2, truth_2, (1.0, 1.0, 2.5)),  # anisotropic, as the header says
        "00003-000": (prediction_3, truth_3, (0.9375, 1.2, 1.1)),  # spacings that are no round numbers
        "00004-000": (prediction_1, empty, (1.0, 1.0, 1.0)),  # empty truth
        "00005-000": (empty, truth_2, (1.0, 1.0, 1.0)),  # empty prediction
        "00006-000": (empty, empty, (1.0, 1.0, 1.0)),  # both empty
        "00007-000": (np.roll(snfh_only, 2, axis=1), snfh_only, (1.0, 1.0, 1.0)),  # NETC, ET, RC, TC: none anywhere
        "00008-000": (None, truth_3, (1.0, 1.0, 1.0)),  # no prediction file
        "00009-000": (apart_prediction, apart_truth, (1.0, 1.0, 1.0)),  # masks that do not overlap
    }


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """BraTS 2024 names: references BraTS-GLI-<id>-seg.nii.gz, predictions ending in <id>.nii.gz."""
    root = tmp_path_factory.mktemp("panoptica")
    reference_dir, prediction_dir = root / "reference", root / "prediction"
    reference_dir.mkdir()
    prediction_dir.mkdir()
    for subject, (prediction, truth, spacing) in subjects().items():
        affine = np.diag([*spacing, 1.0])
        affine[:3, 3] = (-20.0, 12.5, 3.0)
        nib.save(nib.Nifti1Image(truth, affine), reference_dir / f"BraTS-GLI-{subject}-seg.nii.gz")
        if prediction is not None:
            nib.save(nib.Nifti1Image(prediction.astype(np.uint8), affine), prediction_dir / f"team-{subject}.nii.gz")
    return reference_dir, prediction_dir


def as_number(text: str) -> float:
    return math.nan if text == "" else float(text)


# --- the kit against the oracle ------------------------------------------------------------------


def test_every_column_of_every_row_equals_the_official_csv(oracle, folders, tmp_path):
    reference_dir, prediction_dir = folders
    official = official_table(oracle, reference_dir, prediction_dir, tmp_path)
    kit = score_folders(reference_dir, prediction_dir)

    assert [row["subject_id"] for row in kit] == [row["subject_id"] for row in official]
    assert list(kit[0]) == list(official[0])  # the same columns in the same order
    assert list(kit[0])[1:] == COLUMNS
    worst, compared = 0.0, 0
    for kit_row, official_row in zip(kit, official):
        for column in COLUMNS:
            expected, got = as_number(official_row[column]), kit_row[column]
            compared += 1
            if math.isnan(expected) or math.isinf(expected):
                assert (math.isnan(got) and math.isnan(expected)) or got == expected, (kit_row["subject_id"], column)
                continue
            assert got == pytest.approx(expected, abs=1e-6), (kit_row["subject_id"], column, got, expected)
            worst = max(worst, abs(got - expected))
    print(f"compared {len(official)} rows x {len(COLUMNS)} columns ({compared} values), max |difference| {worst:.2e}")
    # The cases reach the rules they are for (else the comparison proves less than it says).
    by_subject = {row["subject_id"]: row for row in kit}
    first = by_subject["BraTS-GLI-00001-000-seg.nii.gz"]
    assert first["all_instance_tp_et"] >= 2 and first["all_instance_fp_et"] >= 1 and first["all_instance_fn_netc"] >= 1
    assert math.isinf(by_subject["BraTS-GLI-00005-000-seg.nii.gz"]["lesionwise_hd95_mean_wt"])
    assert math.isnan(by_subject["BraTS-GLI-00007-000-seg.nii.gz"]["lesionwise_dsc_mean_et"])
    assert by_subject["BraTS-GLI-00009-000-seg.nii.gz"]["global_hd95_et"] == HD95_PENALTY
    assert by_subject["BraTS-GLI-00008-000-seg.nii.gz"]["global_hd95_wt"] == HD95_PENALTY


def test_workers_give_the_same_table(folders):
    reference_dir, prediction_dir = folders
    one, two = score_folders(reference_dir, prediction_dir), score_folders(reference_dir, prediction_dir, workers=2)
    assert [repr(row) for row in one] == [repr(row) for row in two]  # repr: NaN equals NaN


# --- rules a person can check by hand -----------------------------------------------------------


def test_a_perfect_prediction_scores_one_and_zero_distance():
    truth = np.zeros(SHAPE, np.uint8)
    truth[10:20, 10:20, 10:20] = 2
    truth[12:16, 12:16, 12:16] = 3
    row = brats_panoptica_scores(truth, truth, (1.0, 1.0, 1.0))
    assert row["all_instance_tp_snfh"] == 1 and row["all_instance_f1_snfh"] == 1.0
    assert row["global_dsc_wt"] == 1.0 and row["global_nsd_wt"] == 1.0 and row["global_hd95_wt"] == 0.0
    assert row["lesionwise_dsc_std_et"] == 0.0
    assert math.isnan(row["all_instance_prec_rc"]) and math.isnan(row["all_instance_f1_rc"])  # no RC anywhere


def test_global_and_lesionwise_surfaces_use_different_units():
    """A cube against the cube one voxel longer: the official global NSD counts only coinciding
    border voxels (tolerance 0.5, unit voxels), the lesionwise NSD allows the smallest spacing."""
    truth = np.zeros(SHAPE, np.uint8)
    truth[10:14, 10:14, 10:14] = 3
    prediction = truth.copy()
    prediction[14, 10:14, 10:14] = 3
    row = brats_panoptica_scores(prediction, truth, (1.0, 1.0, 1.0))
    assert row["lesionwise_nsd_mean_et"] == 1.0
    assert row["global_nsd_et"] < 1.0
    assert row["global_hd95_et"] == row["lesionwise_hd95_mean_et"] == 1.0


def test_anisotropic_spacing_pairs_with_the_reversed_axes():
    """SimpleITK's (z, y, x) arrays meet GetSpacing()'s (x, y, z): a shift along the first nibabel
    axis is measured with the third spacing."""
    truth = np.zeros(SHAPE, np.uint8)
    truth[10:16, 10:16, 10:16] = 3
    shifted = np.roll(truth, 1, axis=0)
    row = brats_panoptica_scores(shifted, truth, (1.0, 1.0, 2.5))
    assert row["lesionwise_hd95_mean_et"] == 2.5
    assert row["global_hd95_et"] == 1.0  # the global metrics ignore the spacing


def test_wrong_input_is_refused():
    truth = np.zeros(SHAPE, np.uint8)
    with pytest.raises(ValueError, match="labels outside"):
        brats_panoptica_scores(truth + 5, truth, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="one shape"):
        brats_panoptica_scores(truth[:-1], truth, (1.0, 1.0, 1.0))


def test_missing_rows_and_summary_rows_follow_the_parser():
    row = missing_prediction_row()
    assert row["global_hd95_et"] == row["lesionwise_hd95_mean_et"] == HD95_PENALTY
    assert row["lesionwise_hd95_std_et"] == 0.0 and row["global_dsc_et"] == 0.0
    scored = [{"subject_id": "a", "x_hd95": 1.0, "y": math.nan}, {"subject_id": "b", "x_hd95": 3.0, "y": 2.0}]
    table = panoptica_table(scored, ["c"])
    assert [r["subject_id"] for r in table] == ["a", "b", "c", "mean", "std", "median"]
    assert table[2] == {"subject_id": "c", "x_hd95": HD95_PENALTY, "y": 0.0}
    assert table[3]["x_hd95"] == pytest.approx((1 + 3 + 373) / 3) and table[3]["y"] == 1.0  # NaN skipped
    assert table[4]["y"] == pytest.approx(math.sqrt(2))  # ddof 1
    assert table[5]["x_hd95"] == 3.0


def test_ganet_evaluate_with_the_brats_panoptica_protocol_writes_the_official_csv(oracle, tmp_path, capsys):
    """End to end, as a researcher runs it: the truth in the BraTS 2024 layout (a folder per subject),
    the kit's CSV against the official commands' on the same files, every cell."""
    from ganet_lib.evaluation.evaluate import read_rows
    from ganet_lib.runner.cli import main

    layout, flat, predictions = tmp_path / "gt", tmp_path / "reference", tmp_path / "pred"
    for folder in (flat, predictions):
        folder.mkdir()
    for subject, (prediction, truth, spacing) in subjects().items():
        affine = np.diag([*spacing, 1.0])
        name = f"BraTS-GLI-{subject}"
        (layout / name).mkdir(parents=True)
        nib.save(nib.Nifti1Image(truth, affine), layout / name / f"{name}-seg.nii.gz")
        shutil.copy(layout / name / f"{name}-seg.nii.gz", flat / f"{name}-seg.nii.gz")
        if prediction is not None:
            nib.save(nib.Nifti1Image(prediction.astype(np.uint8), affine), predictions / f"{name}.nii.gz")
    out = tmp_path / "kit.csv"
    args = ["evaluate", "--pred", str(predictions), "--gt", str(layout), "--out", str(out)]
    assert main(args + ["--protocol", "brats-panoptica", "--workers", "2"]) == 0
    assert "post-treatment" in capsys.readouterr().out  # the truth was read as 2024+ labels
    official = official_table(oracle, flat, predictions, tmp_path)
    with out.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert list(written[0]) == list(official[0])
    assert [row["subject_id"] for row in written] == [row["subject_id"] for row in official]
    for kit_row, official_row in zip(written, official):
        for column in COLUMNS:
            expected, got = as_number(official_row[column]), as_number(kit_row[column])
            assert (math.isnan(expected) and math.isnan(got)) or got == pytest.approx(expected, abs=1e-6), (
                kit_row["subject_id"],
                column,
            )
    assert read_rows(out)[-3]["subject_id"] == "mean"
