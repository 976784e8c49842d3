"""`ganet validate` (and `ganet synth`) through the command line entry point.

Every broken data set is a copy of the session's synthetic data with one defect; each must give
exit status 2 and an error line that names the offending file or folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ganet_lib.data.cases import MODALITIES
from ganet_lib.data.validate import validate_dataset
from ganet_lib.runner.cli import main

REPO = Path(__file__).resolve().parents[2]


# --- helpers ---------------------------------------------------------------------------------


def copy_brats(synthetic_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic_root / "brats", tmp_path / "brats"))


def copy_nfbs(synthetic_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic_root / "nfbs", tmp_path / "nfbs"))


def case_file(root: Path, number: int, modality: str) -> Path:
    case_id = f"BraTS20_Training_{number:03d}"
    return root / case_id / f"{case_id}_{modality}.nii.gz"


def rewrite(path: Path, array: np.ndarray | None = None, affine: np.ndarray | None = None) -> Path:
    """Overwrite a NIfTI file with another array and/or affine (defaults: the file's own)."""
    image = nib.load(path)
    array = np.asanyarray(image.dataobj) if array is None else array
    affine = image.affine if affine is None else affine
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def truncate(path: Path) -> Path:
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    return path


def validate(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def single_error(code: int, err: str) -> str:
    """The one error line of a run that must fail with exactly one problem."""
    assert code == 2, err
    lines = error_lines(err)
    assert len(lines) == 1, lines
    return lines[0]


# --- good data -----------------------------------------------------------------------------------


def test_good_brats_data(synthetic_root, capsys):
    code, out, err = validate(capsys, "--brats", str(synthetic_root / "brats"))
    assert code == 0, err
    assert "OK" in out
    assert "3 BraTS subject(s)" in out
    assert error_lines(err) == []


def test_good_nfbs_data(synthetic_root, capsys):
    code, out, err = validate(capsys, "--nfbs", str(synthetic_root / "nfbs"))
    assert code == 0, err
    assert "OK" in out
    assert "2 NFBS subject(s)" in out


def test_good_brats_and_nfbs_together(synthetic_root, capsys):
    code, out, err = validate(capsys, "--brats", str(synthetic_root / "brats"), "--nfbs", str(synthetic_root / "nfbs"))
    assert code == 0, err
    assert "OK" in out


def test_subject_355_quirk_is_a_warning_not_an_error(synthetic_root, tmp_path, capsys):
    quirk_id = "BraTS20_Training_355"
    folder = tmp_path / "brats" / quirk_id
    folder.mkdir(parents=True)
    for modality in MODALITIES:
        dst = folder / f"{quirk_id}_{modality}.nii"
        image = nib.load(case_file(synthetic_root / "brats", 1, modality))
        nib.save(image, dst)
    nib.save(nib.load(case_file(synthetic_root / "brats", 1, "seg")), folder / "W39_1998.09.19_Segm.nii")

    with pytest.warns(UserWarning):
        code, out, err = validate(capsys, "--brats", str(tmp_path / "brats"))
    assert code == 0, err
    assert "OK" in out
    assert any(line.startswith("warning:") and "W39_1998.09.19_Segm.nii" in line for line in err.splitlines())


# --- missing files -------------------------------------------------------------------------------


def test_missing_modality(synthetic_root, tmp_path, capsys):
    root = copy_brats(synthetic_root, tmp_path)
    case_file(root, 2, "t2").unlink()
    code, _, err = validate(capsys, "--brats", str(root))
    line = single_error(code, err)
    assert "BraTS20_Training_002" in line
    assert "t2" in line


def test_missing_label(synthetic_root, tmp_path, capsys):
    root = copy_brats(synthetic_root, tmp_path)
    case_file(root, 3, "seg").unlink()
    code, _, err = validate(capsys, "--brats", str(root))
    line = single_error(code, err)
    assert "BraTS20_Training_003" in line

    code, out, err = validate(capsys, "--brats", str(root), "--no-labels")
    assert code == 0, err
    assert "OK" in out


# --- unreadable files ----------------------------------------------------------------------------


def test_truncated_file(synthetic_root, tmp_path, capsys):
    root = copy_brats(synthetic_root, tmp_path)
    broken = truncate(case_file(root, 1, "flair"))
    code, _, err = validate(capsys, "--brats", str(root))
    line = single_error(code, err)
    assert broken.name in line


def test_truncated_label_file(synthetic_root, tmp_path, capsys):
    root = copy_brats(synthetic_root, tmp_path)
    broken = truncate(case_file(root, 2, "seg"))
    code, _, err = validate(capsys, "--brats", str(root))
    line = single_error(code, err)
    assert broken.name in line


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_garbage_file_named_like_a_modality(synthetic_root, tmp_path, capsys, suffix):
    root = copy_brats(synthetic_root, tmp_path)
    original = case_file(root, 2, "t1ce")
    original.unlink()
    garbage = original.with_name(f"BraTS20_Training_002_t1ce{suffix}")
    garbage.write_bytes(b"this is not a NIfTI file\n" * 40)
    code, _, err = validate(capsys, "--brats", str(root))
    line = single_error(code, err)
    assert garbage.name in line


# --- grids ---------------------------------------------------------------------------------------


def test_modality_with_another_shape(synthetic_root, tmp_path, capsys):
    root = copy_brats(synthetic_root, tmp_path)
    path = case_file(root, 1, "t2")
    rewrite(path, array=np.asanyarray(nib.load(path).dataobj)[:, :, :-4])
    assert nib.load(path).shape == (40, 40, 20)
    code, _, err = validate(capsys, "--brats", str(root))
    line = single_error(code, err)
    assert line.startswith(f"error: '{path}'")  # the cropped file is the one blamed
    assert "shape" in line


def test_modality_with_another_affine(synthetic_root, tmp_path, capsys):
    root = copy_brats(synthetic_root, tmp_path)
    path = case_file(root, 3, "t1ce")
    affine = nib.load(path).affine.copy()
    affine[:3, 3] += 5.0
    rewrite(path, affine=affine)
    code, _, err = validate(capsys, "--brats", str(root))
    line = single_error(code, err)
    assert line.startswith(f"error: '{path}'")
    assert "affine" in line


# --- intensities and labels ----------------------------------------------------------------------


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_non_finite_intensities(synthetic_root, tmp_path, capsys, bad_value):
    root = copy_brats(synthetic_root, tmp_path)
    path = case_file(root, 2, "flair")
    array = np.asanyarray(nib.load(path).dataobj).astype(np.float32)
    array[20, 20, 12] = bad_value
    rewrite(path, array=array)
    code, _, err = validate(capsys, "--brats", str(root))
    line = single_error(code, err)
    assert path.name in line
    assert "NaN" in line
    assert "1 NaN" in line  # one bad voxel


def test_unexpected_label_value(synthetic_root, tmp_path, capsys):
    root = copy_brats(synthetic_root, tmp_path)
    path = case_file(root, 1, "seg")
    label = np.asanyarray(nib.load(path).dataobj).copy()
    label[label == 1] = 7
    label[0, 0, 0] = 7  # at least one voxel, whatever the tumour holds
    rewrite(path, array=label)
    code, _, err = validate(capsys, "--brats", str(root))
    line = single_error(code, err)
    case_id = path.name.removesuffix("_seg.nii.gz")
    assert str(path) in line and "no BraTS convention" in line  # names the file, not only the case
    assert re.search(r"\b7\b", line.replace(str(path), "")), line
    assert case_id not in line.replace(
        str(path), ""
    )  # no "while <the same case> holds ...": the file is not compared with itself
    assert "beside the BraTS labels" in line and "set those voxels" in line  # the fix


# --- bad folders ---------------------------------------------------------------------------------


def test_empty_folder(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = validate(capsys, "--brats", str(empty))
    line = single_error(code, err)
    assert str(empty) in line


def test_missing_folder(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code, _, err = validate(capsys, "--brats", str(missing))
    line = single_error(code, err)
    assert str(missing) in line


def test_missing_nfbs_folder(tmp_path, capsys):
    missing = tmp_path / "no-nfbs"
    code, _, err = validate(capsys, "--nfbs", str(missing))
    line = single_error(code, err)
    assert str(missing) in line


def test_truncated_nfbs_file(synthetic_root, tmp_path, capsys):
    root = copy_nfbs(synthetic_root, tmp_path)
    broken = truncate(root / "A10000002" / "sub-A10000002_ses-NFB3_T1w_brain.nii.gz")
    code, _, err = validate(capsys, "--nfbs", str(root))
    line = single_error(code, err)
    assert broken.name in line


def test_threads_report_the_problems_in_subject_order(synthetic_root, tmp_path):
    """Subjects are checked on several threads; the report must not depend on which finished first."""
    root = copy_brats(synthetic_root, tmp_path)
    nfbs = copy_nfbs(synthetic_root, tmp_path)
    truncate(case_file(root, 3, "t1"))
    truncate(case_file(root, 1, "flair"))
    case_file(root, 2, "t2").unlink()
    truncate(nfbs / "A10000002" / "sub-A10000002_ses-NFB3_T1w_brain.nii.gz")
    one = validate_dataset(root, nfbs, progress=False, workers=1)
    three = validate_dataset(root, nfbs, progress=False, workers=3)
    assert one.problems == three.problems and len(one.problems) == 4
    assert [re.search(r"BraTS20_Training_00\d", problem).group() for problem in one.problems[:3]] == [
        "BraTS20_Training_001",
        "BraTS20_Training_002",
        "BraTS20_Training_003",
    ]
    assert "sub-A10000002" in one.problems[3]


def test_validate_needs_a_folder(capsys):
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    assert info.value.code == 2
    assert "--brats" in capsys.readouterr().err


# --- ganet synth ---------------------------------------------------------------------------------


SYNTH_ARGS = ["--cases", "1", "--normals", "1", "--shape", "24", "24", "16"]


def test_synth_writes_and_is_idempotent(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), *SYNTH_ARGS]) == 0
    expected = [
        out / "SYNTHETIC.json",
        *(case_file(out / "brats", 1, m) for m in (*MODALITIES, "seg")),
        out / "nfbs" / "A10000001" / "sub-A10000001_ses-NFB3_T1w_brain.nii.gz",
    ]
    for path in expected:
        assert path.is_file(), path
    assert nib.load(case_file(out / "brats", 1, "t1")).shape == (24, 24, 16)
    assert not (out / "brats" / "BraTS20_Training_002").exists()
    mtime = (out / "SYNTHETIC.json").stat().st_mtime_ns

    assert main(["synth", "--out", str(out), *SYNTH_ARGS]) == 0
    assert (out / "SYNTHETIC.json").stat().st_mtime_ns == mtime
    capsys.readouterr()

    assert main(["synth", "--out", str(out), *SYNTH_ARGS, "--seed", "1"]) == 2
    line = single_error(2, capsys.readouterr().err)
    assert str(out) in line
    assert (out / "SYNTHETIC.json").stat().st_mtime_ns == mtime

    # What synth wrote passes validation.
    code, out_text, err = validate(capsys, "--brats", str(out / "brats"), "--nfbs", str(out / "nfbs"))
    assert code == 0, err
    assert "OK" in out_text


def test_synth_uncompressed_format(tmp_path):
    out = tmp_path / "synth_nii"
    assert main(["synth", "--out", str(out), *SYNTH_ARGS, "--format", "nii"]) == 0
    assert case_file(out / "brats", 1, "t1").with_suffix("").is_file()  # ..._t1.nii
    assert not list(out.rglob("*.gz"))


# --- the installed entry point -------------------------------------------------------------------


def test_module_entry_point_exit_status(tmp_path):
    missing = tmp_path / "nonexistent"
    result = subprocess.run(
        [sys.executable, "-m", "ganet_lib", "validate", "--brats", str(missing)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert str(missing) in lines[0]
    assert "Traceback" not in result.stderr
