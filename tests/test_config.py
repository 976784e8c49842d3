import json

import pytest

from ganet_lib.config import PROFILES, ExperimentConfig, load_config, resolve_profile
from ganet_lib.errors import KitInputError
from ganet_lib.run import setup_run


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_loads(profile):
    config = load_config(profile)
    assert isinstance(config, ExperimentConfig) and config.profile == profile


def test_paper_profile_holds_the_paper_settings():
    config = load_config("paper")
    assert config.preprocess.image_size == 128 and config.preprocess.enhance_lambda == -0.8


def test_overrides_merge_into_the_profile():
    config = load_config("smoke", {"data": {"brats_dir": "/somewhere"}})
    assert config.data.brats_dir == "/somewhere"
    assert config.data.synthetic_cases == load_config("smoke").data.synthetic_cases


def test_unknown_setting_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preprocess:\n  image_sise: 64\n")
    with pytest.raises(KitInputError, match="image_sise.*bad.yaml|bad.yaml.*image_sise"):
        load_config(str(bad))


def test_missing_profile_is_a_clear_error():
    with pytest.raises(KitInputError, match="nonexistent"):
        load_config("nonexistent")


def test_empty_profile_means_environment_then_default(monkeypatch):
    monkeypatch.setenv("GANET_PROFILE", "smoke")
    assert resolve_profile("") == "smoke"
    monkeypatch.delenv("GANET_PROFILE")
    assert resolve_profile("") == "default"


def test_setup_run_writes_config_data_and_a_stable_split(tmp_path):
    run = setup_run("smoke", str(tmp_path / "run"), progress=False)
    assert run.synthetic
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["profile"] == "smoke" and saved["preprocess"]["image_size"] == run.config.preprocess.image_size
    assert len(run.cases) == run.config.data.synthetic_cases
    split = run.split
    assert split["rule"] == "seeded" and sorted(split["train"] + split["test"]) == [c.case_id for c in run.cases]
    again = setup_run("smoke", str(tmp_path / "run"), progress=False)
    assert again.split == split
    assert json.loads((tmp_path / "run" / "split.json").read_text()) == split


def test_changed_synthetic_settings_regenerate(tmp_path):
    setup_run("smoke", str(tmp_path), progress=False)
    profile = tmp_path / "other.yaml"
    profile.write_text("data:\n  synthetic_cases: 2\n  synthetic_normals: 1\n  synthetic_shape: [32, 32, 20]\n")
    run = setup_run(str(profile), str(tmp_path), progress=False)
    assert len(run.cases) == 2


def test_a_yaml_file_extends_a_profile(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: default\ndata:\n  modalities: [flair, t1]\ngan:\n  normals: tumour-free-slices\n")
    config = load_config(str(path))
    default = load_config("default")
    assert (
        config.profile == "mine"
        and config.data.modalities == ("flair", "t1")
        and config.gan.normals == "tumour-free-slices"
    )
    assert (
        config.seg == default.seg and config.data.synthetic_shape == default.data.synthetic_shape
    )  # the rest is the default's
    assert load_config("smoke").notebooks.learning_checks is False and default.notebooks.learning_checks is True
    path.write_text("extends: nonsense\n")
    with pytest.raises(KitInputError, match="extends 'nonsense'"):
        load_config(str(path))


def test_setup_run_resolves_channels_and_labels(tmp_path):
    run = setup_run(
        str(_profile(tmp_path, "data:\n  modalities: [flair, t1]\n")), str(tmp_path / "run"), progress=False
    )
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert (
        saved["modalities"] == ["t1", "flair"]
        and saved["labels"] == "brats"
        and saved["label_convention"] == "brats2017"
    )
    assert run.cases[0].modalities == ("t1", "flair") and run.scheme.name == "brats"


def _profile(tmp_path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text("extends: smoke\n" + text)
    return path
