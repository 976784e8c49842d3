"""Real MRI as users have it: modality subsets, whole-tumour masks, label conventions, intensity
conventions and normals without NFBS, each on small files written in that form (`ganet_lib.data.forms`)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import yaml

from ganet_lib.config import PreprocessConfig
from ganet_lib.data import forms
from ganet_lib.data.cases import (
    axial_slices,
    brain_mask,
    configure_cases,
    find_brats_cases,
    load_label,
    load_modalities,
    survey_cases,
)
from ganet_lib.data.labels import survey_labels, to_kit_labels
from ganet_lib.errors import KitInputError
from ganet_lib.method.preprocess import SliceCache, build_slice_cache, preprocess_case, tumour_free_slices
from ganet_lib.runner.cli import main

# --- label conventions, decided per data set --------------------------------------------------


def test_survey_decides_each_convention():
    pre2023 = lambda values: {case: "brats2020" for case in values}  # noqa: E731
    cases = {"a": (1.0, 2.0, 4.0), "b": (2.0, 4.0)}
    assert survey_labels(cases, pre2023(cases)).convention == "brats2017"
    cases = {"a": (1.0, 2.0, 3.0, 4.0), "b": (2.0, 4.0)}  # 3 and 4 in one map: only 2012-2016 numbers both
    assert survey_labels(cases, pre2023(cases)).convention == "brats2012"
    cases = {"a": (1.0, 2.0, 3.0)}
    assert survey_labels(cases, {"a": "brats2023"}).convention == "brats2023"
    for masks in ({"a": (1.0,), "b": (1.0,)}, {"a": (255.0,)}, {"a": (0.25, 0.5, 1.0)}):
        assert survey_labels(masks, pre2023(masks)).convention == "whole-tumour"
    assert survey_labels({"a": (1.0, 2.0, 4.0)}, {"a": "brats2020"}, labels="whole-tumour").convention == "whole-tumour"
    assert survey_labels({"a": (1.0, 2.0, 3.0)}, {"a": "brats2020"}, convention="brats2012").convention == "brats2012"


def test_2023_names_with_a_cavity_are_the_post_treatment_convention_and_2023_maps_join_them():
    named = lambda values: {case: "brats2023" for case in values}  # noqa: E731
    post = {"a": (1.0, 2.0, 3.0, 4.0), "b": (2.0, 4.0), "c": (1.0, 2.0, 3.0)}  # c: a 2023 map, no cavity
    survey = survey_labels(post, named(post))
    assert survey.convention == "brats2024" and survey.scheme.name == "brats-rc"
    assert "2 of 3 label maps" in survey.reason and "2024 extends 2023" in survey.reason
    assert survey_labels({"c": (1.0, 2.0, 3.0)}, named("c"), convention="brats2024").convention == "brats2024"
    with pytest.raises(KitInputError, match="does not"):  # the 2023 numbering has no 4
        survey_labels(post, named(post), convention="brats2023")
    assert survey_labels(post, named(post), labels="brats-rc").convention == "brats2024"  # a resolved run's setting
    cases = {"a": (1.0, 2.0, 3.0, 4.0)}
    assert survey_labels(cases, {"a": "brats2020"}).convention == "brats2012"  # older names: as before


def test_the_cavity_reads_as_the_kits_5_and_writes_back_as_4():
    from ganet_lib.data.labels import BRATS_RC, from_kit_labels, numbering_for

    raw = np.array([0, 1, 2, 3, 4], np.uint8)
    kit = to_kit_labels(raw, "brats2024")
    assert kit.tolist() == [0, 1, 2, 4, 5]
    assert from_kit_labels(kit, "brats2024").tolist() == raw.tolist()
    assert from_kit_labels(np.array([0, 1, 2, 4], np.uint8), "brats2023").tolist() == [0, 1, 2, 3]
    assert from_kit_labels(np.array([0, 1, 2, 4], np.uint8), "brats2017").tolist() == [0, 1, 2, 4]
    assert numbering_for("brats2023", BRATS_RC) == "brats2024"  # a cavity needs the 2024 numbering
    assert BRATS_RC.regions["RC"] == (5,) and 5 not in BRATS_RC.regions["WT"]


def test_synth_brats2024_writes_post_treatment_subjects_with_fluid_in_the_cavity(synthetic_root, tmp_path):
    written = forms.rewrite_brats(synthetic_root / "brats", tmp_path / "post", labels="brats2024", progress=False)
    cases = find_brats_cases(written)
    assert all(case.naming == "brats2023" for case in cases)
    survey = survey_cases(cases, progress=False)
    assert survey.convention == "brats2024"
    operated = [c for c in cases if 4 in np.unique(np.asanyarray(nib.load(c.label).dataobj))]
    assert 0 < len(operated) < len(cases)  # every other subject: a cavity; the others are 2023-like maps
    case = configure_cases(operated[:1], convention="brats2024")[0]
    label = load_label(case)
    volumes, _ = load_modalities(case, dtype=None)
    t2, flair = volumes[case.modalities.index("t2")], volumes[case.modalities.index("flair")]
    cavity, edema = label == 5, label == 2
    assert cavity.any() and (label == 4).any()  # the cavity replaced part of the core; tumour remains
    # Fluid: bright on T2, dark on FLAIR (suppressed), unlike the edema around it.
    assert t2[cavity].mean() > t2[edema].mean() and flair[cavity].mean() < 0.5 * flair[edema].mean()


@pytest.mark.parametrize(
    "values, namings, words",
    [
        ({"a": (1.0, 3.0), "b": (2.0, 4.0)}, None, "mixture"),  # 3 without 4 beside 4 without 3
        ({"a": (1.0, 2.0, 3.0)}, None, "data.label_convention"),  # 2012 or 2023? the files cannot say
        ({"a": (1.0, 2.0, 4.0), "b": (255.0,)}, None, "no BraTS convention"),  # BraTS maps beside masks
        ({"a": (1.0, 2.0, 3.0), "b": (1.0, 2.0, 4.0)}, {"a": "brats2023", "b": "brats2020"}, "mixes BraTS 2023 files"),
    ],
)
def test_survey_refuses_mixtures_and_ambiguity_in_one_sentence(values, namings, words):
    with pytest.raises(KitInputError) as caught:
        survey_labels(values, namings or {case: "brats2020" for case in values})
    message = str(caught.value)
    assert words in message and message.count(". ") == 0 and message.endswith(".")


def test_kit_labels_of_each_convention():
    raw = np.array([0, 1, 2, 3, 4], np.int16)
    assert to_kit_labels(raw, "brats2012").tolist() == [0, 1, 2, 1, 4]  # 3 (NET) joins NCR/NET
    assert to_kit_labels(raw[:4], "brats2023").tolist() == [0, 1, 2, 4]  # 3 (ET) becomes the kit's 4
    assert to_kit_labels(np.array([0.0, 0.4, 1.0, 255.0], np.float32), "whole-tumour").tolist() == [0, 1, 1, 1]
    with pytest.raises(KitInputError, match="label value.*3"):
        to_kit_labels(raw, "brats2017")  # before this change a 3 silently became background


@pytest.mark.parametrize(
    "form, convention",
    [
        ("brats2017", "brats2017"),
        ("brats2012", "brats2012"),
        ("brats2023", "brats2023"),
        ("brats2024", "brats2024"),
        ("whole-tumour", "whole-tumour"),
    ],
)
def test_each_label_form_reads_back_as_the_source(synthetic_root, tmp_path, form, convention):
    written = forms.rewrite_brats(synthetic_root / "brats", tmp_path / form, labels=form, progress=False)
    cases = find_brats_cases(written)
    survey = survey_cases(cases, progress=False)
    assert survey.convention == convention
    sources = find_brats_cases(synthetic_root / "brats")
    if form == "brats2012":
        assert any(3 in np.unique(np.asanyarray(nib.load(c.label).dataobj)) for c in cases)  # really written with 3s
    for case, source in zip(configure_cases(cases, convention=survey.convention), sources):
        original = load_label(source)  # 0/1/2/4
        expected = (original != 0).astype(np.uint8) if form == "whole-tumour" else original
        if form == "brats2024":  # the operated subjects' cavity replaced part of the core
            expected = np.where(load_label(case) == 5, 5, expected).astype(np.uint8)
        np.testing.assert_array_equal(load_label(case), expected, err_msg=case.case_id)


# --- intensity conventions ---------------------------------------------------------------------


def test_every_intensity_form_gives_the_same_brain_and_the_same_normalised_image(synthetic_root, tmp_path):
    source = find_brats_cases(synthetic_root / "brats")[0]
    volumes, _ = load_modalities(source, dtype=None)
    true_brain = np.zeros(volumes[0].shape, bool)
    for v in volumes:
        true_brain |= v != 0  # how the generator defines the brain (zero background)
    settings = PreprocessConfig(image_size=32, enhance=False, min_brain_pixels=16)
    results = {}
    for form in forms.INTENSITY_FORMS:
        case = find_brats_cases(
            forms.rewrite_brats(synthetic_root / "brats", tmp_path / form, intensity=form, progress=False)
        )[0]
        arrays, _ = load_modalities(case, dtype=None)
        if form == "zscore":
            assert all(a[0, 0, 0] != 0 and (a < 0).any() for a in arrays)  # a non-zero background, negative values
        if form == "zscore-mask":
            assert case.brain_mask is not None  # background 0, and the brain's values on both sides of it
            assert all(
                (a[~true_brain] == 0).all() and (a[true_brain] < 0).any() and (a[true_brain] > 0).any() for a in arrays
            )
        brain = brain_mask(case, arrays)
        np.testing.assert_array_equal(brain, true_brain, err_msg=form)  # the brain is found in each form
        results[form] = preprocess_case(arrays, None, settings, brain)
    reference = results["int16"]
    inside = reference.images > 0
    for form, result in results.items():
        assert result.box == reference.box and np.array_equal(result.slice_index, reference.slice_index), form
        images = result.images.astype(np.float32)
        assert images.min() == 0.0 and images.max() == 1.0, form  # the same [0, 1] range
        # The same normalised brain (up to float16 storage); the background stays background.
        np.testing.assert_allclose(images, reference.images.astype(np.float32), atol=2e-3, err_msg=form)
        assert (images[~inside] < 2e-3).all(), form


def test_a_volume_without_a_constant_background_asks_for_a_brain_mask(synthetic_root, tmp_path):
    case = find_brats_cases(
        forms.rewrite_brats(synthetic_root / "brats", tmp_path / "noisy", intensity="float32", progress=False)
    )[0]
    arrays, _ = load_modalities(case)
    arrays[0] = arrays[0] + np.random.default_rng(0).normal(0, 1, arrays[0].shape).astype(
        np.float32
    )  # noise everywhere
    with pytest.raises(KitInputError, match="brainmask"):
        brain_mask(case, arrays)


# --- modality subsets ---------------------------------------------------------------------------


def test_a_modality_subset_sets_the_channels_and_names_a_missing_file(synthetic_root, tmp_path):
    written = forms.rewrite_brats(
        synthetic_root / "brats", tmp_path / "two", modalities=("flair", "t1"), progress=False
    )
    cases = configure_cases(find_brats_cases(written), ("flair", "t1"))
    assert cases[0].modalities == ("t1", "flair")  # the kit's channel order
    cache = SliceCache(
        build_slice_cache(
            cases, tmp_path / "cache", PreprocessConfig(image_size=32, min_brain_pixels=16), progress=False
        )
    )
    assert cache.channels == ("t1", "flair") and cache[0][0].shape == (2, 32, 32)
    with pytest.raises(KitInputError) as caught:
        load_modalities(configure_cases(find_brats_cases(written), ("t1", "t2"))[0])
    assert "no t2 file" in str(caught.value) and "data.modalities" in str(caught.value)


# --- normals from tumour-free slices ---------------------------------------------------------------


def test_tumour_free_slices_keep_their_margin():
    label = np.zeros((20, 4, 4), np.uint8)
    label[8:11, 1, 1] = 2  # tumour on slices 8, 9, 10
    kept = tumour_free_slices(label, np.arange(20), margin=3)
    assert kept.tolist() == [0, 1, 2, 3, 4, 14, 15, 16, 17, 18, 19]  # 3 tumour-free slices between them and the tumour
    assert tumour_free_slices(np.zeros_like(label), np.arange(5), margin=3).tolist() == [0, 1, 2, 3, 4]


# --- the whole pipeline on one form: FLAIR + T1, whole-tumour masks, z-scored, tumour-free normals ---


def test_pipeline_on_flair_t1_whole_tumour_zscored_data(tmp_path, capsys):
    data = tmp_path / "data"
    assert (
        main(
            [
                "synth",
                "--out",
                str(data),
                "--cases",
                "4",
                "--normals",
                "1",
                "--shape",
                "48",
                "48",
                "32",
                "--modalities",
                "flair,t1",
                "--labels",
                "whole-tumour",
                "--intensity",
                "zscore",
            ]
        )
        == 0
    )
    profile = tmp_path / "forms.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "extends": "smoke",
                "data": {"brats_dir": str(data / "brats"), "modalities": ["t1", "flair"]},
                "gan": {"normals": "tumour-free-slices", "normal_margin": 2},
            }
        )
    )
    run = tmp_path / "run"
    assert main(["validate", "--brats", str(data / "brats"), "--modalities", "t1,flair"]) == 0
    assert "whole-tumour masks" in capsys.readouterr().out
    assert main(["pretrain-gan", "--config", str(profile), "--run", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["labels"] == "whole-tumour" and config["data"]["modalities"] == ["t1", "flair"]
    split = json.loads((run / "split.json").read_text())
    [normals] = [p for p in (run / "cache").iterdir() if p.name.startswith("tumourfree-")]
    manifest = json.loads((normals / "manifest.json").read_text())
    assert {c["case_id"] for c in manifest["cases"]} <= set(split["train"])  # never a test subject
    for entry in manifest["cases"]:  # no normal slice within the margin of a tumour slice
        label = axial_slices(
            np.asanyarray(nib.load(data / "brats" / entry["case_id"] / f"{entry['case_id']}_seg.nii.gz").dataobj)
        )
        tumour = np.flatnonzero(label.any(axis=(1, 2)))
        assert all(np.abs(tumour - z).min() > 2 for z in entry["slice_index"]), entry["case_id"]
    for variant in ("unet", "ganet"):
        assert main(["train-seg", "--config", str(profile), "--run", str(run), "--variant", variant]) == 0
    out = tmp_path / "pred"
    test_case = data / "brats" / split["test"][0]
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(run / "seg-ganet" / "best.pt"),
                "--input",
                str(test_case),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "tumour is written as label 1" in capsys.readouterr().out
    prediction = np.asanyarray(nib.load(out / f"{split['test'][0]}.nii.gz").dataobj)
    assert set(np.unique(prediction).tolist()) <= {0, 1}
    assert main(["evaluate", "--pred", str(out), "--gt", str(test_case), "--out", str(tmp_path / "scores.csv")]) == 0
    rows = (tmp_path / "scores.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[1] == "WT"  # WT only: TC and ET are not computed from nothing


def test_without_t1_the_ganet_variant_refuses_and_the_unet_trains(tmp_path, capsys):
    data = tmp_path / "data"
    assert (
        main(
            [
                "synth",
                "--out",
                str(data),
                "--cases",
                "4",
                "--normals",
                "1",
                "--shape",
                "48",
                "48",
                "32",
                "--modalities",
                "flair,t2",
            ]
        )
        == 0
    )
    profile = tmp_path / "no-t1.yaml"
    profile.write_text(
        yaml.safe_dump({"extends": "smoke", "data": {"brats_dir": str(data / "brats"), "modalities": ["flair", "t2"]}})
    )
    run = tmp_path / "run"
    capsys.readouterr()
    assert main(["train-seg", "--config", str(profile), "--run", str(run), "--variant", "ganet"]) == 2
    assert main(["pretrain-gan", "--config", str(profile), "--run", str(run)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("needs T1" in line and "data.modalities" in line for line in errors), errors
    assert main(["train-seg", "--config", str(profile), "--run", str(run), "--variant", "unet"]) == 0
    assert main(["sweep", "--run", str(run)]) == 2
    assert "T1" in capsys.readouterr().err
