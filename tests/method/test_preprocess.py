import json
from dataclasses import replace

import numpy as np
import pytest

from ganet_lib.config import PreprocessConfig
from ganet_lib.data.cases import axial_slices, find_brats_cases, load_label, load_modalities
from ganet_lib.method import preprocess
from ganet_lib.method.preprocess import SliceCache, build_slice_cache, crop_square, preprocess_case, square_brain_box

SETTINGS = PreprocessConfig(image_size=16, min_brain_pixels=4)


def test_square_brain_box_by_hand():
    brain = np.zeros((1, 40, 40), bool)
    brain[0, 10:20, 5:30] = True  # rows 10..19, columns 5..29: 10 x 25
    # side = max(9, 24) + 1 + 2 * margin(2) = 29; centred: row0 = (10 + 19 + 1 - 29) // 2 = 0,
    # col0 = (5 + 29 + 1 - 29) // 2 = 3
    assert square_brain_box(brain) == (0, 29, 3, 32)


def test_crop_square_pads_outside_the_slice():
    stack = np.arange(2 * 4 * 4, dtype=np.int16).reshape(2, 4, 4) + 1
    out = crop_square(stack, (-1, 3, 2, 6))  # one row above, two columns right of the slice
    assert out.shape == (2, 4, 4)
    np.testing.assert_array_equal(out[:, 0, :], 0)
    np.testing.assert_array_equal(out[:, :, 2:], 0)
    np.testing.assert_array_equal(out[:, 1:, :2], stack[:, 0:3, 2:4])
    np.testing.assert_array_equal(crop_square(stack, (0, 4, 0, 4)), stack)


@pytest.fixture(scope="module")
def cases(synthetic_root):
    return find_brats_cases(synthetic_root / "brats")


def test_preprocess_case_drops_exactly_the_empty_slices(cases):
    volumes, _ = load_modalities(cases[0], dtype=None)
    label = load_label(cases[0])
    kept = preprocess_case(volumes, label, replace(SETTINGS, drop_empty_slices=False))
    dropped = preprocess_case(volumes, label, SETTINGS)
    tumour_slices = np.flatnonzero(axial_slices(label).any(axis=(1, 2)))
    np.testing.assert_array_equal(dropped.slice_index, np.intersect1d(kept.slice_index, tumour_slices))
    assert len(dropped.slice_index) < len(kept.slice_index)
    assert all(lab.any() for lab in dropped.labels)
    assert dropped.images.shape == (len(dropped.slice_index), 4, 16, 16) and dropped.images.dtype == np.float16
    assert set(np.unique(dropped.labels)) <= {0, 1, 2, 4}
    assert 0.0 <= dropped.images.min() and dropped.images.max() <= 1.0


def test_normalisation_without_enhancement(cases):
    volumes, _ = load_modalities(cases[0], dtype=None)
    settings = replace(SETTINGS, enhance=False, clip_percentile=100.0)
    box = preprocess_case(volumes, None, settings).box
    result = preprocess_case(volumes, None, replace(settings, image_size=box[1] - box[0]))  # no resizing
    # Divided by the brain maximum: every modality reaches 1 somewhere and stays within [0, 1].
    maxima = result.images.astype(np.float32).max(axis=(0, 2, 3))
    np.testing.assert_allclose(maxima, 1.0, atol=1e-3)
    assert result.labels.max() == 0  # no label map given


def test_cache_is_reused_rebuilt_on_change_and_readable(cases, tmp_path, monkeypatch):
    first = build_slice_cache(cases, tmp_path, SETTINGS, progress=False)
    manifest = json.loads((first / "manifest.json").read_text())
    cache = SliceCache(first)
    assert len(cache) == sum(c["slices"] for c in manifest["cases"]) > 0
    image, label = cache[0]
    assert image.shape == (4, 16, 16) and image.dtype == np.float32 and label.shape == (16, 16)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cache was rebuilt although nothing changed")

    with monkeypatch.context() as patch:
        patch.setattr(preprocess, "preprocess_case", must_not_run)
        assert build_slice_cache(cases, tmp_path, SETTINGS, progress=False) == first

    changed = build_slice_cache(cases, tmp_path, replace(SETTINGS, drop_empty_slices=False), progress=False)
    assert changed != first and len(SliceCache(changed)) > len(cache)

    subset = SliceCache(first, case_ids=[cases[1].case_id])
    assert [c["case_id"] for c in subset.cases] == [cases[1].case_id]


def test_changed_input_file_changes_the_key(cases):
    sources = preprocess.brats_sources(cases)
    before = preprocess.cache_key(sources, SETTINGS)
    assert preprocess.cache_key(sources, replace(SETTINGS, enhance_lambda=-1.0)) != before
    assert preprocess.cache_key(sources[:2], SETTINGS) != before


def test_interrupted_build_leaves_no_cache(cases, tmp_path, monkeypatch):
    real = preprocess.preprocess_case
    calls = []

    def fail_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-build
        return real(*args, **kwargs)

    monkeypatch.setattr(preprocess, "preprocess_case", fail_on_second)
    with pytest.raises(KeyboardInterrupt):
        build_slice_cache(cases, tmp_path, SETTINGS, progress=False)
    assert list(tmp_path.iterdir()) == []  # no cache, and no partial folder either

    # A partial folder left by a killed process is never taken for a cache.
    key = preprocess.cache_key(preprocess.brats_sources(cases), SETTINGS)
    (tmp_path / f"slices-{key}.partial-99999").mkdir()
    monkeypatch.setattr(preprocess, "preprocess_case", real)
    folder = build_slice_cache(cases, tmp_path, SETTINGS, progress=False)
    assert folder.name == f"slices-{key}" and (folder / "manifest.json").is_file()
    assert len(SliceCache(folder)) > 0


def test_a_subject_without_brain_is_a_clear_error(cases, tmp_path):
    import nibabel as nib

    from ganet_lib.errors import KitInputError

    case = cases[0]
    blank = tmp_path / "data" / case.case_id
    blank.mkdir(parents=True)
    for path in [*case.images.values(), case.label]:
        image = nib.load(path)
        nib.save(nib.Nifti1Image(np.zeros(image.shape, np.int16), image.affine), blank / path.name)
    with pytest.raises(KitInputError, match=case.case_id):
        build_slice_cache(find_brats_cases(tmp_path / "data"), tmp_path / "cache", SETTINGS, progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_normal_cache_holds_one_channel_and_every_brain_slice(synthetic_root, tmp_path):
    from ganet_lib.data.cases import find_nfbs_subjects, load_nfbs

    subjects = find_nfbs_subjects(synthetic_root / "nfbs")
    cache = SliceCache(preprocess.build_normal_cache(subjects, tmp_path, SETTINGS, progress=False))
    image, label = cache[0]
    assert image.shape == (1, 16, 16) and not label.any()
    brain_pixels = [(load_nfbs(s) != 0).sum(axis=(0, 1)) for s in subjects]  # per axial slice
    brain_slices = sum(int((counts >= SETTINGS.min_brain_pixels).sum()) for counts in brain_pixels)
    assert len(cache) == brain_slices  # nothing dropped: normals have no label map
