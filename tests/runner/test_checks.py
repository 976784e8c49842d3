"""Real or generated, per data set; learning checks that stop a run on the kit's data and report on a user's."""

import json
from pathlib import Path

import pytest

from ganet_lib.run import setup_run
from ganet_lib.runner.checks import KIT_GUARD, TRAINING, LearningCheckFailed, learning_check, read_checks
from ganet_lib.runner.cli import main
from ganet_lib.runner.report import write_report


@pytest.fixture(scope="module")
def real_form_root(tmp_path_factory) -> Path:
    """BraTS-layout data written in another form (FLAIR + T1, BraTS 2023 labels), as a researcher's own."""
    out = tmp_path_factory.mktemp("real-form") / "data"
    assert (
        main(
            [
                "synth",
                "--out",
                str(out),
                "--cases",
                "4",
                "--normals",
                "1",
                "--shape",
                "48",
                "48",
                "32",
                "--modalities",
                "t1,flair",
                "--labels",
                "brats2023",
                "--intensity",
                "float32",
            ]
        )
        == 0
    )
    return out


def profile(tmp_path: Path, text: str) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "mine.yaml"
    path.write_text("extends: smoke\n" + text)
    return str(path)


def test_real_brats_with_tumour_free_slice_normals_generates_nothing(real_form_root, tmp_path, capsys):
    mine = profile(tmp_path, "data:\n  modalities: [flair, t1]\ngan:\n  normals: tumour-free-slices\n")
    run = setup_run(mine, str(tmp_path / "run"), brats_dir=str(real_form_root / "brats"), progress=False)
    assert not (
        tmp_path / "run" / "synthetic"
    ).exists()  # neither synthetic BraTS subjects nor normals it would not use
    assert (run.synthetic_brats, run.synthetic_normals, run.synthetic, run.embedded_data) == (
        False,
        False,
        False,
        False,
    )
    assert run.normals == [] and run.data_kind() == "real data"
    assert (
        "segmentation data: real data" in run.describe()
        and "tumour-free slices of the training subjects" in run.describe()
    )
    report = write_report(run.run_dir).read_text()
    assert "Real segmentation data" in report and "Synthetic" not in report and "generated, not BraTS" not in report


def test_real_brats_with_nfbs_normals_generates_only_the_normals(real_form_root, tmp_path):
    mine = profile(tmp_path, "data:\n  modalities: [flair, t1]\n")
    run = setup_run(mine, str(tmp_path / "run"), brats_dir=str(real_form_root / "brats"), progress=False)
    assert (
        not (tmp_path / "run" / "synthetic" / "brats").exists() and (tmp_path / "run" / "synthetic" / "nfbs").is_dir()
    )
    assert (run.synthetic_brats, run.synthetic_normals, run.embedded_data) == (False, True, False)
    assert (
        "segmentation data: real data" in run.describe() and "GAN normals: synthetic data (generated)" in run.describe()
    )
    assert json.loads((tmp_path / "run" / "synthetic" / "SYNTHETIC.json").read_text())["cases"] == 0


def enforced(tmp_path: Path, brats_dir: str = "", **paths) -> object:
    mine = profile(
        tmp_path,
        "notebooks:\n  learning_checks: true\n"
        + ("data:\n  modalities: [flair, t1]\ngan:\n  normals: tumour-free-slices\n" if brats_dir else ""),
    )
    return setup_run(mine, str(tmp_path / "run"), brats_dir=brats_dir, progress=False)


def test_a_kit_guard_stops_on_the_embedded_data_and_is_a_finding_on_real_data(real_form_root, tmp_path, capsys):
    embedded = enforced(tmp_path / "a")
    with pytest.raises(LearningCheckFailed, match="notebooks.learning_checks: false"):
        learning_check(embedded, "04", "WT Dice 0.80", False, "mean WT Dice 0.770", KIT_GUARD)
    assert read_checks(embedded.run_dir)["WT Dice 0.80"]["outcome"] == "stop"

    real = enforced(tmp_path / "b", brats_dir=str(real_form_root / "brats"))
    assert learning_check(real, "04", "WT Dice 0.80", False, "mean WT Dice 0.770", KIT_GUARD) is False
    out = capsys.readouterr().out
    assert "FINDING  WT Dice 0.80: mean WT Dice 0.770" in out and "the run goes on" in out
    assert read_checks(real.run_dir)["WT Dice 0.80"]["outcome"] == "finding"
    assert "not met: a finding on this data" in write_report(real.run_dir).read_text()


def test_a_training_check_stops_on_any_data_unless_switched_off(real_form_root, tmp_path, capsys):
    real = enforced(tmp_path / "a", brats_dir=str(real_form_root / "brats"))
    with pytest.raises(LearningCheckFailed, match="training failed"):
        learning_check(real, "03", "generator beats the mean fill", False, "hole L1 0.30 against 0.25", TRAINING)
    smoke = setup_run("smoke", str(tmp_path / "smoke"), progress=False)  # learning_checks: false
    assert (
        learning_check(smoke, "03", "generator beats the mean fill", False, "hole L1 0.30 against 0.25", TRAINING)
        is False
    )
    assert (
        "not enforced" in capsys.readouterr().out
        and read_checks(smoke.run_dir)["generator beats the mean fill"]["outcome"] == "off"
    )
    assert learning_check(smoke, "03", "passes", True, "fine", TRAINING) is True
