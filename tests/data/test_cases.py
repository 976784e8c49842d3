"""Finding and loading BraTS and NFBS subjects in every supported layout, splits, and the generator.

The session data set (`synthetic_root`) is only read: every other layout is built in `tmp_path`
from copies of its files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ganet_lib.data.cases import (
    MODALITIES,
    PAPER_TEST_IDS,
    case_statistics,
    find_brats_cases,
    find_nfbs_subjects,
    load_case,
    load_label,
    load_nfbs,
    split_cases,
)
from ganet_lib.errors import KitInputError

SHAPE = (40, 40, 24)  # conftest's SMALL_SHAPE
CASE_IDS = ["BraTS20_Training_001", "BraTS20_Training_002", "BraTS20_Training_003"]
NFBS_IDS = ["A10000001", "A10000002"]
LPS = ("L", "P", "S")


# --- helpers ---------------------------------------------------------------------------------


def stored_array(path: Path) -> np.ndarray:
    """The array stored in a NIfTI file, in the file's own dtype."""
    return np.asanyarray(nib.load(path).dataobj)


def save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def resave(src: Path, dst: Path) -> Path:
    """Write `src`'s array and affine to `dst` (the suffix of `dst` picks .nii or .nii.gz)."""
    image = nib.load(src)
    return save_nifti(np.asanyarray(image.dataobj), image.affine, dst)


def brats_file(root: Path, case_id: str, modality: str) -> Path:
    return root / case_id / f"{case_id}_{modality}.nii.gz"


def loaded_cases(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return {case.case_id: load_case(case) for case in find_brats_cases(root)}


def assert_same_cases(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for case_id in a:
        for left, right in zip(a[case_id], b[case_id]):
            np.testing.assert_array_equal(left, right)


def flatten(src: Path, dst: Path, pattern: str = "*.nii*") -> Path:
    """Copy every file matching `pattern` below `src` into the single folder `dst`."""
    dst.mkdir(parents=True)
    for path in sorted(src.rglob(pattern)):
        shutil.copy2(path, dst / path.name)
    return dst


def expected_lps(path: Path) -> np.ndarray:
    """The stored volume reoriented to LPS voxel axes, computed independently of the library."""
    image = nib.load(path)
    current = nib.orientations.io_orientation(image.affine)
    target = nib.orientations.axcodes2ornt(LPS)
    transform = nib.orientations.ornt_transform(current, target)
    return nib.orientations.apply_orientation(image.get_fdata(dtype=np.float32), transform)


# --- BraTS 2020, nested (as generated) -----------------------------------------------------------


def test_nested_brats2020_layout_is_found(synthetic_root):
    cases = find_brats_cases(synthetic_root / "brats")
    assert [c.case_id for c in cases] == CASE_IDS
    for case in cases:
        assert case.naming == "brats2020"
        assert sorted(case.images) == sorted(MODALITIES)
        for modality, path in case.images.items():
            assert path == brats_file(synthetic_root / "brats", case.case_id, modality)
        assert case.label == brats_file(synthetic_root / "brats", case.case_id, "seg")
        assert case.notes == ()


def test_load_case_returns_image_label_affine(synthetic_root):
    case = find_brats_cases(synthetic_root / "brats")[0]
    image, label, affine = load_case(case)
    assert image.shape == (4, *SHAPE)
    assert image.dtype == np.float32
    assert label.shape == SHAPE
    assert label.dtype == np.uint8
    assert set(np.unique(label).tolist()) <= {0, 1, 2, 4}
    np.testing.assert_array_equal(affine, nib.load(case.images["t1"]).affine)
    # Channels come in MODALITIES order, each equal to its file.
    for channel, modality in enumerate(MODALITIES):
        np.testing.assert_array_equal(image[channel], stored_array(case.images[modality]).astype(np.float32))
    np.testing.assert_array_equal(label, stored_array(case.label))


def test_load_case_without_label(synthetic_root):
    case = find_brats_cases(synthetic_root / "brats")[0]
    image, label, _ = load_case(case, with_label=False)
    assert label is None
    assert image.shape == (4, *SHAPE)


# --- other BraTS layouts -------------------------------------------------------------------------


def test_flattened_layout_matches_nested(synthetic_root, tmp_path):
    flat = flatten(synthetic_root / "brats", tmp_path / "flat")
    assert len(list(flat.iterdir())) == 15  # 3 subjects x (4 modalities + label), no subfolders
    cases = find_brats_cases(flat)
    assert [c.case_id for c in cases] == CASE_IDS
    assert all(c.label is not None and len(c.images) == 4 for c in cases)
    assert_same_cases(loaded_cases(flat), loaded_cases(synthetic_root / "brats"))


def test_uncompressed_nii_loads_identical_arrays(synthetic_root, tmp_path):
    src_root = synthetic_root / "brats"
    dst_root = tmp_path / "nii"
    for path in sorted(src_root.rglob("*.nii.gz")):
        folder = dst_root / path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        resave(path, folder / path.name.replace(".nii.gz", ".nii"))
    assert not list(dst_root.rglob("*.gz"))
    cases = find_brats_cases(dst_root)
    assert [c.case_id for c in cases] == CASE_IDS
    assert all(p.suffix == ".nii" for c in cases for p in [*c.images.values(), c.label])
    assert_same_cases(loaded_cases(dst_root), loaded_cases(src_root))


def test_one_case_folder_finds_just_that_case(synthetic_root):
    cases = find_brats_cases(synthetic_root / "brats" / "BraTS20_Training_002")
    assert [c.case_id for c in cases] == ["BraTS20_Training_002"]
    assert len(cases[0].images) == 4 and cases[0].label is not None


def test_subject_355_label_name_quirk(synthetic_root, tmp_path):
    src_id, quirk_id = "BraTS20_Training_001", "BraTS20_Training_355"
    folder = tmp_path / "brats" / quirk_id
    folder.mkdir(parents=True)
    for modality in MODALITIES:
        resave(brats_file(synthetic_root / "brats", src_id, modality), folder / f"{quirk_id}_{modality}.nii")
    odd_label = resave(brats_file(synthetic_root / "brats", src_id, "seg"), folder / "W39_1998.09.19_Segm.nii")

    with pytest.warns(UserWarning, match="W39_1998"):
        cases = find_brats_cases(tmp_path / "brats")

    assert [c.case_id for c in cases] == [quirk_id]
    case = cases[0]
    assert case.naming == "brats2020"
    assert case.label == odd_label
    assert sorted(case.images) == sorted(MODALITIES)
    assert len(case.notes) == 1 and "W39_1998.09.19_Segm.nii" in case.notes[0]
    np.testing.assert_array_equal(load_label(case), stored_array(brats_file(synthetic_root / "brats", src_id, "seg")))


def test_brats2021_naming(synthetic_root, tmp_path):
    src_id = "BraTS20_Training_002"
    folder = tmp_path / "brats2021" / "BraTS2021_00000"
    folder.mkdir(parents=True)
    for modality in (*MODALITIES, "seg"):
        shutil.copy2(
            brats_file(synthetic_root / "brats", src_id, modality), folder / f"BraTS2021_00000_{modality}.nii.gz"
        )

    cases = find_brats_cases(tmp_path / "brats2021")
    assert [(c.case_id, c.naming) for c in cases] == [("BraTS2021_00000", "brats2021")]
    assert cases[0].label_convention == "brats2017"
    assert_same_cases(
        {"x": load_case(cases[0])},
        {"x": load_case(find_brats_cases(synthetic_root / "brats" / src_id)[0])},
    )


def test_brats2023_naming_maps_modalities_and_label(synthetic_root, tmp_path):
    src_id = "BraTS20_Training_001"
    case_id = "BraTS-GLI-00000-000"
    folder = tmp_path / "brats2023" / case_id
    folder.mkdir(parents=True)
    names_2023 = {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"}
    for modality, name in names_2023.items():
        shutil.copy2(brats_file(synthetic_root / "brats", src_id, modality), folder / f"{case_id}-{name}.nii.gz")
    seg_2020 = brats_file(synthetic_root / "brats", src_id, "seg")
    label_2020 = stored_array(seg_2020)
    assert (label_2020 == 4).any()  # otherwise the 3 -> 4 mapping would not be exercised
    label_2023 = np.where(label_2020 == 4, 3, label_2020).astype(np.uint8)
    save_nifti(label_2023, nib.load(seg_2020).affine, folder / f"{case_id}-seg.nii.gz")

    cases = find_brats_cases(tmp_path / "brats2023")
    assert [(c.case_id, c.naming) for c in cases] == [(case_id, "brats2023")]
    case = cases[0]
    assert case.label_convention == "brats2023"
    assert {m: p.name for m, p in case.images.items()} == {m: f"{case_id}-{n}.nii.gz" for m, n in names_2023.items()}

    image, label, _ = load_case(case)
    for channel, modality in enumerate(MODALITIES):
        source = stored_array(brats_file(synthetic_root / "brats", src_id, modality)).astype(np.float32)
        np.testing.assert_array_equal(image[channel], source, err_msg=modality)
    assert 3 in stored_array(case.label)
    np.testing.assert_array_equal(load_label(case), label_2020)
    np.testing.assert_array_equal(label, label_2020)


# --- NFBS ----------------------------------------------------------------------------------------


def test_nfbs_nested_layout_is_reoriented_to_lps(synthetic_root):
    subjects = find_nfbs_subjects(synthetic_root / "nfbs")
    assert [s.subject_id for s in subjects] == NFBS_IDS
    for subject in subjects:
        assert subject.brain.name == f"sub-{subject.subject_id}_ses-NFB3_T1w_brain.nii.gz"

    brain = subjects[0].brain
    stored = nib.load(brain)
    assert nib.aff2axcodes(stored.affine) != LPS  # reorientation is really needed
    assert stored.shape == (43, 43, 30)  # stored as R, A, S: 40*256/240, 40*256/240, 24*192/155

    volume = load_nfbs(subjects[0])
    assert volume.dtype == np.float32
    assert volume.shape == (43, 43, 30)
    expected = expected_lps(brain)
    assert expected.shape == volume.shape
    np.testing.assert_array_equal(volume, expected)
    # Sanity: the check compares a real brain, not zeros.
    assert volume.max() > 0


def test_nfbs_in_a_permuted_orientation_is_reoriented_too(synthetic_root, tmp_path):
    subject = find_nfbs_subjects(synthetic_root / "nfbs")[0]
    image = nib.load(subject.brain)
    transform = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(image.affine), nib.orientations.axcodes2ornt(("P", "I", "R"))
    )
    folder = tmp_path / subject.subject_id
    folder.mkdir()
    nib.save(image.as_reoriented(transform), folder / subject.brain.name)  # axes permuted and flipped
    [permuted] = find_nfbs_subjects(tmp_path)
    assert nib.load(permuted.brain).shape == (43, 30, 43)
    np.testing.assert_array_equal(load_nfbs(permuted), load_nfbs(subject))


def test_nfbs_flat_layout_matches_nested(synthetic_root, tmp_path):
    flat = flatten(synthetic_root / "nfbs", tmp_path / "nfbs_flat")
    assert len(list(flat.iterdir())) == 6  # T1w, T1w_brain and T1w_brainmask per subject
    flat_subjects = find_nfbs_subjects(flat)
    nested_subjects = find_nfbs_subjects(synthetic_root / "nfbs")
    assert [s.subject_id for s in flat_subjects] == NFBS_IDS
    assert all(s.brain.parent == flat for s in flat_subjects)
    for flat_subject, nested_subject in zip(flat_subjects, nested_subjects):
        np.testing.assert_array_equal(load_nfbs(flat_subject), load_nfbs(nested_subject))


def test_case_folders_that_are_symbolic_links_are_read(synthetic_root, tmp_path):
    """A split made of links to case folders (and to NFBS subject folders); a link loop does not hang."""
    split = tmp_path / "split"
    (split / "brats").mkdir(parents=True)
    (split / "nfbs").mkdir()
    for case_id in CASE_IDS[:2]:
        (split / "brats" / case_id).symlink_to(synthetic_root / "brats" / case_id, target_is_directory=True)
    for subject in (synthetic_root / "nfbs").iterdir():
        (split / "nfbs" / subject.name).symlink_to(subject, target_is_directory=True)
    (split / "brats" / "loop").symlink_to(split / "brats", target_is_directory=True)

    cases = find_brats_cases(split / "brats")
    assert [c.case_id for c in cases] == CASE_IDS[:2]
    original = {c.case_id: c for c in find_brats_cases(synthetic_root / "brats")}
    for case in cases:
        assert sorted(case.images) == sorted(MODALITIES)
        assert case.label.resolve() == original[case.case_id].label.resolve()
    assert [s.subject_id for s in find_nfbs_subjects(split / "nfbs")] == NFBS_IDS
    assert [c.case_id for c in find_brats_cases(split / "brats" / CASE_IDS[0])] == CASE_IDS[
        :1
    ]  # one linked case folder


# --- splits --------------------------------------------------------------------------------------


def test_split_full_brats2020_uses_paper_split():
    ids = [f"BraTS20_Training_{n:03d}" for n in range(1, 370)]
    split = split_cases(ids, test_fraction=0.2, seed=0)
    assert split["rule"] == "paper"
    assert len(PAPER_TEST_IDS) == 36
    assert sorted(split["test"]) == sorted(PAPER_TEST_IDS)
    assert len(split["train"]) == 333
    assert not set(split["train"]) & set(split["test"])
    assert set(split["train"]) | set(split["test"]) == set(ids)


def test_seeded_split_of_a_subset():
    ids = [f"BraTS20_Training_{n:03d}" for n in range(1, 25)]
    first = split_cases(ids, test_fraction=0.2, seed=42)
    again = split_cases(list(reversed(ids)), test_fraction=0.2, seed=42)
    other = split_cases(ids, test_fraction=0.2, seed=43)
    assert first["rule"] == "seeded"
    assert len(first["test"]) == 5  # round(0.2 * 24)
    assert len(first["train"]) == 19
    assert first == again
    assert first["test"] != other["test"]
    assert not set(first["train"]) & set(first["test"])
    assert set(first["train"]) | set(first["test"]) == set(ids)


def test_seeded_split_needs_two_subjects():
    with pytest.raises(KitInputError):
        split_cases(["BraTS20_Training_001"], test_fraction=0.2, seed=0)


# --- bad BraTS roots -----------------------------------------------------------------------------


def test_find_brats_cases_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KitInputError, match="No BraTS files") as info:
        find_brats_cases(empty)
    assert str(empty) in str(info.value)


def test_find_brats_cases_missing_folder(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(KitInputError, match="does not exist") as info:
        find_brats_cases(missing)
    assert str(missing) in str(info.value)


def test_find_brats_cases_on_a_file(synthetic_root):
    a_file = brats_file(synthetic_root / "brats", "BraTS20_Training_001", "t1")
    with pytest.raises(KitInputError, match="is a file") as info:
        find_brats_cases(a_file)
    assert str(a_file) in str(info.value)


def test_find_nfbs_subjects_empty_folder(tmp_path):
    with pytest.raises(KitInputError) as info:
        find_nfbs_subjects(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_case_statistics_by_hand(tmp_path):
    folder = tmp_path / "BraTS20_Training_007"
    folder.mkdir()
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])  # 1 x 1 x 2 mm voxels: 2 ul each
    brain = np.zeros((10, 10, 6), np.int16)
    brain[2:8, 2:8, 1:5] = 100  # brain on slices 1..4
    label = np.zeros((10, 10, 6), np.uint8)
    label[3:5, 3:5, 2] = 1  # 4 voxels NCR
    label[3:6, 3:6, 3] = 2  # 9 voxels ED
    label[6, 6, 3] = 4  # 1 voxel ET
    for modality in ("t1", "t1ce", "t2", "flair"):
        nib.save(nib.Nifti1Image(brain, affine), folder / f"BraTS20_Training_007_{modality}.nii.gz")
    nib.save(nib.Nifti1Image(label, affine), folder / "BraTS20_Training_007_seg.nii.gz")

    [row] = case_statistics(find_brats_cases(tmp_path), progress=False)
    volumes = {k: row[f"ml_{k}"] for k in ("NCR", "ED", "ET", "WT", "TC")}
    assert volumes == pytest.approx({"NCR": 0.008, "ED": 0.018, "ET": 0.002, "WT": 0.028, "TC": 0.010})
    assert (row["brain_slices"], row["tumour_slices"], row["empty_slices"]) == (4, 2, 2)
