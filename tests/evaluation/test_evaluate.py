"""`ganet evaluate` and `ganet sweep`: files in, CSV out, bad input refused (SPEC section 7)."""

import csv
import shutil

import nibabel as nib
import numpy as np
import pytest

from ganet_lib.checkpoint import save_checkpoint
from ganet_lib.data.cases import find_brats_cases, load_label
from ganet_lib.errors import KitInputError
from ganet_lib.evaluation import paper
from ganet_lib.evaluation.evaluate import read_rows, table_2, write_rows, write_table_2
from ganet_lib.method.networks import build_gan
from ganet_lib.run import setup_run
from ganet_lib.runner.cli import main
from ganet_lib.studies.detector import sweep_table

COLUMNS = ["subject", "region", "dice", "hd95", "lw_dice", "lw_hd95", "tp", "fn", "fp"]


@pytest.fixture()
def truth_and_predictions(synthetic_root, tmp_path):
    """A label-only truth folder (<case>/<case>_seg.nii.gz) of 3 cases, and a prediction folder
    holding a perfect prediction of the first case and a one-voxel-shifted one of the second; the
    third case has no prediction."""
    cases = find_brats_cases(synthetic_root / "brats")
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for case in cases:
        (gt / case.case_id).mkdir(parents=True)
        shutil.copy(case.label, gt / case.case_id / case.label.name)
    pred.mkdir()
    for case, shift in zip(cases[:2], (0, 1)):
        image = nib.load(case.label)
        labels = np.roll(load_label(case), shift, axis=0)
        nib.save(nib.Nifti1Image(labels, image.affine), pred / f"{case.case_id}.nii.gz")
    return gt, pred, cases


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_evaluate_writes_the_contract_csv(truth_and_predictions, tmp_path, capsys):
    gt, pred, cases = truth_and_predictions
    out = tmp_path / "scores.csv"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"no prediction for {cases[2].case_id}" in captured.err
    assert "WT:" in captured.out and "mean over 3 case(s)" in captured.out
    rows = read_csv(out)
    assert list(rows[0]) == COLUMNS
    assert [(r["subject"], r["region"]) for r in rows] == [
        (c.case_id, region) for c in cases for region in ("WT", "TC", "ET")
    ]
    perfect = [r for r in rows if r["subject"] == cases[0].case_id]
    assert all(
        float(r["dice"]) == 1.0 and float(r["hd95"]) == 0.0 and float(r["lw_dice"]) == 1.0 and r["fp"] == "0"
        for r in perfect
    )
    shifted = [r for r in rows if r["subject"] == cases[1].case_id]
    assert all(0.3 < float(r["dice"]) < 1.0 for r in shifted)
    missing = [r for r in rows if r["subject"] == cases[2].case_id and r["region"] == "WT"][0]
    assert (float(missing["dice"]), float(missing["hd95"]), missing["fp"]) == (0.0, 374.0, "0") and int(
        missing["fn"]
    ) >= 1


def test_workers_give_the_same_rows_in_the_same_order(truth_and_predictions, tmp_path, capsys):
    gt, pred, cases = truth_and_predictions
    serial, parallel = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(serial), "--workers", "1"]) == 0
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(parallel), "--workers", "2"]) == 0
    assert serial.read_text() == parallel.read_text()
    assert (
        capsys.readouterr().err.count(f"no prediction for {cases[2].case_id}") == 2
    )  # the warning reaches the parent too


def test_evaluate_paper_slicewise_leaves_the_lesion_counts_empty(truth_and_predictions, tmp_path):
    gt, pred, cases = truth_and_predictions
    out = tmp_path / "paper.csv"
    assert (
        main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--protocol", "paper-slicewise", "--out", str(out)])
        == 0
    )
    rows = read_csv(out)
    assert list(rows[0]) == COLUMNS and len(rows) == 9
    assert all(r["lw_hd95"] == "" and r["tp"] == "" for r in rows)
    assert all(float(r["dice"]) == 1.0 for r in rows if r["subject"] == cases[0].case_id)


def test_a_prediction_of_another_shape_names_both_files(truth_and_predictions, tmp_path, capsys):
    gt, pred, cases = truth_and_predictions
    bad = pred / f"{cases[0].case_id}.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)), bad)
    out = tmp_path / "scores.csv"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(bad) in err and str(cases[0].label.name) in err and "shape" in err
    assert not out.exists()  # nothing half-written


def test_a_prediction_with_foreign_labels_is_refused(truth_and_predictions, tmp_path, capsys):
    gt, pred, cases = truth_and_predictions
    image = nib.load(cases[0].label)
    labels = load_label(cases[0])
    labels[0, 0, 0] = 3  # BraTS 2020 has no label 3
    nib.save(nib.Nifti1Image(labels, image.affine), pred / f"{cases[0].case_id}.nii.gz")
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "x.csv")]) == 2
    assert "label(s) [3]" in capsys.readouterr().err


def test_predictions_are_read_in_the_truths_numbering_and_a_4_beside_2023_truth_is_refused(tmp_path, capsys):
    """2023-named truth: the prediction's ET is 3, as `ganet predict` writes it; an old 0/1/2/4 file is
    refused with both readings named, and --pred-convention brats2017 reads it as it was meant."""
    from ganet_lib.data.cases import voxel_spacing  # noqa: F401 (the kit's reader of the truth)
    from ganet_lib.data.synthetic import brats_affine

    gt, pred = tmp_path / "gt" / "BraTS-GLI-00001-000", tmp_path / "pred"
    gt.mkdir(parents=True)
    pred.mkdir()
    truth = np.zeros((24, 24, 16), np.uint8)
    truth[6:14, 6:14, 4:10] = 2
    truth[8:12, 8:12, 5:9] = 3  # ET in the 2023 numbering
    truth[9:11, 9:11, 6:8] = 1
    affine = brats_affine(truth.shape)
    for modality in ("t1n", "t1c", "t2w", "t2f"):
        nib.save(nib.Nifti1Image(truth.astype(np.int16) + 1, affine), gt / f"BraTS-GLI-00001-000-{modality}.nii.gz")
    nib.save(nib.Nifti1Image(truth, affine), gt / "BraTS-GLI-00001-000-seg.nii.gz")
    nib.save(nib.Nifti1Image(truth, affine), pred / "BraTS-GLI-00001-000.nii.gz")  # the truth's own numbering
    out = tmp_path / "scores.csv"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(tmp_path / "gt"), "--out", str(out)]) == 0
    rows = {row["region"]: row for row in read_rows(out)}
    assert rows["ET"]["dice"] == 1.0 and rows["WT"]["dice"] == 1.0
    old = np.where(truth == 3, 4, truth).astype(np.uint8)  # what kit versions before this change wrote
    nib.save(nib.Nifti1Image(old, affine), pred / "BraTS-GLI-00001-000.nii.gz")
    assert main(["evaluate", "--pred", str(pred), "--gt", str(tmp_path / "gt"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "label(s) [4]" in err and "resection cavity" in err and "--pred-convention" in err
    args = ["evaluate", "--pred", str(pred), "--gt", str(tmp_path / "gt"), "--out", str(out)]
    assert main(args + ["--pred-convention", "brats2017"]) == 0
    assert {row["region"]: row for row in read_rows(out)}["ET"]["dice"] == 1.0


def test_sweep_table_by_hand():
    scores = np.array([0.05, 0.15, 0.25, 0.35, 0.45, 0.5])
    positive = np.array([True, True, False, True, False, False])
    row = sweep_table(scores, positive, (0.3,))[0]
    # called tumour: 0.05, 0.15, 0.25 -> TP 2, FP 1; not called: 0.35 (FN), 0.45, 0.5 (TN)
    assert (row["TP"], row["FN"], row["FP"], row["TN"]) == (2, 1, 1, 2)
    assert row["accuracy"] == pytest.approx(4 / 6)
    assert row["sensitivity"] == pytest.approx(2 / 3) and row["specificity"] == pytest.approx(2 / 3)


def test_sweep_command_scores_every_test_slice(tmp_path, capsys):
    run = setup_run("smoke", str(tmp_path), progress=False)
    generator_net, discriminator = build_gan(run.config.model, seed=0)  # untrained: the mechanics are under test
    save_checkpoint(
        {"generator": generator_net.state_dict(), "discriminator": discriminator.state_dict()},
        tmp_path / "gan" / "best.pt",
    )
    assert main(["sweep", "--run", str(tmp_path), "--thresholds", "0.3", "0.6"]) == 0
    out = capsys.readouterr().out
    assert "Table 1" in out and "synthetic data" in out
    slices = read_csv(run.table_path("sweep_slices.csv"))
    depth = run.config.data.synthetic_shape[2]
    assert len(slices) == depth * len(run.split["test"])  # every axial slice, brain or not
    detectors = {row["detector"]: row for row in read_csv(run.table_path("detectors_auc.csv"))}
    assert {"brain_area", "centre_closeness", "d_mean"} <= set(detectors)  # slice position beside the discriminator
    assert detectors["brain_area"]["AP chance"] != "" and "brain area of the slice" in out
    table = read_csv(run.table_path("table1_sweep.csv"))
    assert [float(r["threshold"]) for r in table] == [0.3, 0.6]
    assert all(int(r["TP"]) + int(r["FN"]) + int(r["FP"]) + int(r["TN"]) == len(slices) for r in table)


def test_sweep_without_a_gan_says_what_to_run(tmp_path, capsys):
    setup_run("smoke", str(tmp_path), progress=False)
    assert main(["sweep", "--run", str(tmp_path)]) == 2
    assert "ganet pretrain-gan" in capsys.readouterr().err


def test_sweep_of_a_folder_that_is_no_run(tmp_path, capsys):
    assert main(["sweep", "--run", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_read_rows_gives_back_what_write_rows_wrote(tmp_path):
    rows = [
        {
            "subject": "a",
            "region": "WT",
            "dice": 0.75,
            "hd95": 2.5,
            "lw_dice": 0.5,
            "lw_hd95": None,
            "tp": None,
            "fn": None,
            "fp": None,
        }
    ]
    assert read_rows(write_rows(tmp_path / "m.csv", rows)) == rows
    (tmp_path / "other.csv").write_text("case,score\na,1\n")
    with pytest.raises(KitInputError, match="other.csv"):
        read_rows(tmp_path / "other.csv")


def test_table_2_puts_the_papers_rows_first_then_each_metrics_file(tmp_path):
    run = setup_run("smoke", str(tmp_path), progress=False)

    def row(subject, region, dice):
        return {
            "subject": subject,
            "region": region,
            "dice": dice,
            "hd95": 1.0,
            "lw_dice": dice,
            "lw_hd95": None,
            "tp": None,
            "fn": None,
            "fp": None,
        }

    for name, dice in (
        ("unet_brats", 0.5),
        ("ganet_paper-slicewise", 0.25),
        ("ganet-raw_brats", 0.625),
        ("ganet_brats", 0.75),
    ):
        write_rows(
            tmp_path / "metrics" / f"{name}.csv", [row(s, g, dice) for s in ("a", "b", "c") for g in ("WT", "TC", "ET")]
        )
    rows = table_2(run)
    assert [r["model"] for r in rows] == [f"paper: {name}" for name in paper.TABLE_2] + [
        "kit: ganet (brats)",
        "kit: ganet (brats, raw arg-max)",
        "kit: ganet (paper-slicewise)",
        "kit: unet (brats)",
    ]
    assert rows[3]["Dice TC"] == paper.TABLE_2["GANnet-Seg"][2]
    kit = rows[4:]
    assert [r["Dice WT"] for r in kit] == [75.0, 62.5, 25.0, 50.0] and kit[0]["HD95 ET"] == 1.0
    assert (
        "3 test subjects" in kit[0]["source"]
        and "labels 1/2/4" in kit[2]["source"]
        and "labels" not in kit[3]["source"]
    )
    assert (
        "scores from metrics/ganet_brats.csv" in kit[0]["source"]
    )  # no checkpoint in this run: says where the numbers came from
    save_checkpoint({"model": {}}, tmp_path / "seg-unet" / "best.pt")
    assert "checkpoint seg-unet/best.pt" in table_2(run)[-1]["source"]
    assert (
        table_2(run)[-1]["model"] == "kit: unet (brats, post-processed: none chosen)"
    )  # no postprocess.json beside it: the raw arg-max
    with open(write_table_2(run), newline="") as handle:
        assert [r["model"] for r in csv.DictReader(handle)] == [r["model"] for r in table_2(run)]
