"""The synthetic generator: deterministic, per-subject seeds, plausible anatomy and tumours."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ganet_lib.data.cases import MODALITIES, find_brats_cases, load_case
from ganet_lib.data.synthetic import SynthSpec, write_synthetic_dataset
from ganet_lib.errors import KitInputError

# --- helpers ---------------------------------------------------------------------------------


def stored_array(path: Path) -> np.ndarray:
    """The array stored in a NIfTI file, in the file's own dtype."""
    return np.asanyarray(nib.load(path).dataobj)


def brats_file(root: Path, case_id: str, modality: str) -> Path:
    return root / case_id / f"{case_id}_{modality}.nii.gz"


def decoded_arrays(root: Path) -> dict[str, np.ndarray]:
    """Relative path -> decoded array for every NIfTI file under `root`."""
    return {p.relative_to(root).as_posix(): stored_array(p) for p in sorted(root.rglob("*.nii*"))}


SMALL_SPEC = SynthSpec(cases=2, normals=1, shape=(32, 32, 20), seed=3)


@pytest.fixture(scope="module")
def small_synth(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("small") / "data", SMALL_SPEC, progress=False)


def test_generator_is_deterministic(small_synth, tmp_path):
    again = write_synthetic_dataset(tmp_path / "again", SMALL_SPEC, progress=False)
    first, second = decoded_arrays(small_synth), decoded_arrays(again)
    assert len(first) == 2 * 5 + 1 * 3
    assert sorted(first) == sorted(second)
    for name in first:
        assert first[name].dtype == second[name].dtype, name
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_generator_seed_changes_every_volume(small_synth, tmp_path):
    other = write_synthetic_dataset(
        tmp_path / "other", SynthSpec(cases=2, normals=1, shape=(32, 32, 20), seed=4), progress=False
    )
    first, second = decoded_arrays(small_synth), decoded_arrays(other)
    assert sorted(first) == sorted(second)
    for name in first:
        assert not np.array_equal(first[name], second[name]), name


def test_generator_case_does_not_depend_on_case_count(small_synth, tmp_path):
    one = write_synthetic_dataset(
        tmp_path / "one", SynthSpec(cases=1, normals=1, shape=(32, 32, 20), seed=3), progress=False
    )
    arrays_one, arrays_two = decoded_arrays(one), decoded_arrays(small_synth)
    assert not any("BraTS20_Training_002" in name for name in arrays_one)
    assert len(arrays_one) == 5 + 3
    for name, array in arrays_one.items():
        np.testing.assert_array_equal(array, arrays_two[name], err_msg=name)


@pytest.mark.parametrize("which", ["session", "small"])
def test_generated_cases_are_plausible(which, synthetic_root, small_synth):
    root = synthetic_root if which == "session" else small_synth
    cases = find_brats_cases(root / "brats")
    assert len(cases) == (3 if which == "session" else 2)
    for case in cases:
        image, label, _ = load_case(case)
        values = set(np.unique(label).tolist())
        assert values <= {0, 1, 2, 4}, case.case_id
        assert 2 in values and values & {1, 4}, (case.case_id, values)

        brain = (image != 0).any(axis=0)
        assert 0.05 < brain.mean() < 0.5  # a brain inside a larger field of view
        assert not brain[0].any() and not brain[-1].any()  # zero at the borders
        for channel, modality in enumerate(MODALITIES):
            # Each modality is non-zero exactly on the common brain mask.
            np.testing.assert_array_equal(image[channel] != 0, brain, err_msg=f"{case.case_id} {modality}")
        assert not label[~brain].any(), case.case_id

        flair = image[MODALITIES.index("flair")]
        assert flair[label == 2].mean() > flair[(label == 0) & brain].mean(), case.case_id


def test_generator_refuses_a_folder_with_other_content(small_synth, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("something else")
    with pytest.raises(KitInputError, match="already exists") as info:
        write_synthetic_dataset(busy, SMALL_SPEC, progress=False)
    assert str(busy) in str(info.value)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]

    other_spec = SynthSpec(cases=2, normals=1, shape=(32, 32, 20), seed=5)
    with pytest.raises(KitInputError) as info:
        write_synthetic_dataset(small_synth, other_spec, progress=False)
    assert str(small_synth) in str(info.value)


def test_generator_same_spec_is_a_no_op(small_synth):
    manifest = small_synth / "SYNTHETIC.json"
    t1 = brats_file(small_synth / "brats", "BraTS20_Training_001", "t1")
    before = (manifest.stat().st_mtime_ns, t1.stat().st_mtime_ns)
    assert write_synthetic_dataset(small_synth, SMALL_SPEC, progress=False) == small_synth
    assert (manifest.stat().st_mtime_ns, t1.stat().st_mtime_ns) == before
    assert find_brats_cases(small_synth / "brats")[0].case_id == "BraTS20_Training_001"


# --- the anatomy of the synthetic brains ----------------------------------------------------------


def _subject(seed: int, shape=(48, 48, 32), tumour: bool = True):
    from ganet_lib.data.synthetic import BRATS_FOV_MM, render_modalities, subject_maps

    rng = np.random.default_rng(seed)
    fractions, labels = subject_maps(shape, BRATS_FOV_MM, rng, with_tumour=tumour)
    return fractions, labels, render_modalities(fractions, labels, rng)


def test_synthetic_tissue_contrasts_follow_real_mri():
    for seed in range(3):
        fractions, labels, images = _subject(seed)
        normal = labels == 0
        mean = {m: {t: images[m][normal & (fractions[t] > 0.8)].mean() for t in ("csf", "gm", "wm")} for m in images}
        assert mean["t1"]["wm"] > mean["t1"]["gm"] > mean["t1"]["csf"], seed  # T1: WM > GM > CSF
        assert mean["t2"]["csf"] > mean["t2"]["gm"] > mean["t2"]["wm"], seed  # T2: CSF > GM > WM
        assert mean["flair"]["gm"] > mean["flair"]["wm"] > mean["flair"]["csf"], seed  # FLAIR: CSF suppressed
        edema, wm = labels == 2, normal & (fractions["wm"] > 0.8)
        assert images["flair"][edema].mean() > images["flair"][wm].mean()  # edema bright on FLAIR ...
        assert 0.75 < images["t1"][edema].mean() / images["t1"][wm].mean() < 1.0  # ... and only slightly dark on T1
        if (labels == 4).any():
            rim = labels == 4
            assert images["t1ce"][rim].mean() > 1.2 * images["t1ce"][wm].mean()  # enhancement: bright on T1ce only
            assert images["t1"][rim].mean() < images["t1"][wm].mean()


def test_synthetic_subjects_have_their_own_anatomy_and_tumours_grow_in_tissue():
    first, second = _subject(0, tumour=False)[0], _subject(1, tumour=False)[0]
    brain_a, brain_b = first["gm"] + first["wm"] > 0.5, second["gm"] + second["wm"] > 0.5
    overlap = (brain_a & brain_b).sum() / (brain_a | brain_b).sum()
    assert 0.7 < overlap < 0.98  # the same template, not the same brain
    for seed in range(3):  # seeded in deep white matter: the tumour lies in tissue, not in CSF
        fractions, labels, _ = _subject(seed)
        assert labels.any() and (fractions["gm"][labels > 0] + fractions["wm"][labels > 0]).mean() > 0.5, seed
