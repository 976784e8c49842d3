import nibabel as nib
import numpy as np
import pytest

from ganet_lib.data import case_statistics, find_brats_cases


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
