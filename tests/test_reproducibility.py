"""What is bit-identical: the same machine, seed and thread count give the same checkpoints (README,
"Reproducibility"). And the ablation's seeds: what changes with a seed, what does not."""

import json

import numpy as np
import pytest
import torch

from ganet_lib.checkpoint import load_checkpoint
from ganet_lib.method.seg_data import validation_ids
from ganet_lib.method.train_gan import normal_validation_ids, pretrain_gan_for_run
from ganet_lib.method.train_seg import train_segmentation_for_run
from ganet_lib.run import setup_run
from ganet_lib.studies.ablation import paired_interval, seed_run, sentence, verdict


def _tensors(value, prefix=""):
    """Every tensor (and number) inside a checkpoint's nested dicts and lists, by path."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "seconds":  # wall time per epoch, the one thing allowed to differ
                yield from _tensors(item, f"{prefix}/{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{prefix}/{index}")
    elif isinstance(value, (int, float)):
        yield prefix, torch.tensor(value)


def _train_smoke(folder) -> dict:
    """The smoke profile from nothing (its synthetic data included): GAN, then both U-Nets."""
    run = setup_run("smoke", str(folder), progress=False)
    pretrain_gan_for_run(run, progress=False)
    for variant in ("ganet", "unet"):
        train_segmentation_for_run(run, variant, progress=False)
    return {name: load_checkpoint(folder / name / "last.pt") for name in ("gan", "seg-ganet", "seg-unet")}


def test_same_seed_and_threads_give_bit_identical_checkpoints(tmp_path):
    first, second = _train_smoke(tmp_path / "a"), _train_smoke(tmp_path / "b")
    compared = 0
    for name in first:
        for part in ("generator", "discriminator", "opt_g", "opt_d", "model", "optimizer", "history"):
            if part not in first[name]:
                continue
            left, right = dict(_tensors(first[name][part])), dict(_tensors(second[name][part]))
            assert left.keys() == right.keys(), (name, part)
            for path, tensor in left.items():
                same = torch.equal(tensor, right[path]) or bool(
                    (tensor.isnan() & right[path].isnan()).all()
                )  # NaN: unet's loss_adv
                assert same, f"{name} {part}{path} differs between two identical runs"
                compared += 1
    assert compared > 100  # the networks' weights and the optimisers' moments were all compared


def test_an_ablation_seed_changes_the_training_not_the_data(tmp_path):
    run = setup_run("smoke", str(tmp_path / "run"), progress=False)
    other = seed_run(run, 3)
    assert other.run_dir == tmp_path / "run" / "ablation" / "seed3"
    assert (other.config.gan.seed, other.config.seg.seed) == (run.config.gan.seed + 3, run.config.seg.seed + 3)
    assert other.split == run.split
    assert [c.case_id for c in other.cases] == [c.case_id for c in run.cases]
    assert (other.cache_dir.resolve(), other.brats_dir.resolve()) == (run.cache_dir.resolve(), run.brats_dir.resolve())
    # The validation hold-outs follow val_seed, not seed: every seed selects and stops on the same subjects.
    assert validation_ids(other) == validation_ids(run) and normal_validation_ids(other) == normal_validation_ids(run)
    assert json.loads((other.run_dir / "config.json").read_text())["seg"]["seed"] == run.config.seg.seed + 3
    assert seed_run(run, 0) is run


def test_paired_interval_by_hand():
    # A constant difference: every bootstrap sample has the same mean.
    assert paired_interval(np.full((6, 3), 0.02)) == pytest.approx((0.02, 0.02, 0.02))
    # One seed, subjects +-1 around 0.5: the interval is the bootstrap of a mean of 40 values with sd 1,
    # so about 0.5 +- 1.96 / sqrt(40) = 0.5 +- 0.31.
    differences = np.array([1.5, -0.5] * 20)[:, None]
    mean, low, high = paired_interval(differences)
    assert mean == pytest.approx(0.5)
    assert low == pytest.approx(0.5 - 0.31, abs=0.04) and high == pytest.approx(0.5 + 0.31, abs=0.04)
    # Seeds that disagree widen the interval: the same subjects, one seed shifted by +1 and one by -1.
    two_seeds = np.concatenate([differences + 1, differences - 1], axis=1)
    _, low2, high2 = paired_interval(two_seeds)
    assert high2 - low2 > (high - low) * 1.5


def test_the_verdict_follows_the_interval():
    assert (verdict(0.01, 0.05), verdict(-0.05, -0.01), verdict(-0.01, 0.05)) == (
        "better",
        "worse",
        "not distinguishable",
    )
    row = {
        "region": "WT",
        "subjects": 8,
        "seeds": 1,
        "difference": 0.04,
        "ci_low": -0.01,
        "ci_high": 0.09,
        "verdict": "not distinguishable",
    }
    assert sentence([{**row, "seeds": 5}]).startswith(
        "GANet-Seg and the plain U-Net are not distinguishable at this size"
    )
    better = sentence([{**row, "seeds": 5, "ci_low": 0.01, "verdict": "better"}])
    assert (
        better.startswith("GANet-Seg is better than the plain U-Net at this size")
        and "8 test subjects x 5 seeds" in better
    )
    # One seed: what the pair showed, and that this is no verdict on the method.
    one = sentence([{**row, "ci_low": 0.01, "verdict": "better"}])
    assert one.startswith("One training seed only: on these test subjects this seed's pair shows GANet-Seg better")
    assert "cannot say whether GANet-Seg is better at this size" in one and "8 test subjects x 1 seed" in one


def test_ganet_ablation_over_two_seeds_then_results(tmp_path, capsys):
    from ganet_lib.evaluation.evaluate import read_rows
    from ganet_lib.run import open_run
    from ganet_lib.runner.cli import main

    profile = tmp_path / "ablation-smoke.yaml"  # the smoke profile with 3 test subjects
    profile.write_text("extends: smoke\ndata:\n  synthetic_cases: 6\n  test_fraction: 0.5\n")
    run_dir = tmp_path / "run"
    assert main(["ablation", "--config", str(profile), "--run", str(run_dir), "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    seed1 = run_dir / "ablation" / "seed1"
    for folder in (run_dir, seed1):
        for name in ("gan", "seg-ganet", "seg-unet"):
            assert (folder / name / "best.pt").is_file()
    # The seed changes the training: seed 1's U-Net starts and ends elsewhere than seed 0's.
    weights = [load_checkpoint(folder / "seg-unet" / "last.pt")["model"] for folder in (run_dir, seed1)]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # The summary is the mean of the per-subject CSVs of both seeds, recomputed here by hand.
    summary = json.loads((run_dir / "tables" / "ablation.json").read_text())
    assert summary["seeds"] == [0, 1]
    wt = next(row for row in summary["summary"] if row["region"] == "WT")
    dice = {}
    for folder, seed in ((run_dir, 0), (seed1, 1)):
        for variant in ("ganet", "unet"):
            rows = [r for r in read_rows(folder / "metrics" / f"{variant}_brats.csv") if r["region"] == "WT"]
            dice[variant, seed] = np.array([r["dice"] for r in rows])
    assert len(dice["ganet", 0]) == wt["subjects"] == 3 and wt["seeds"] == 2
    assert wt["ganet_mean"] == pytest.approx(np.mean([dice["ganet", 0].mean(), dice["ganet", 1].mean()]))
    assert wt["unet_sd"] == pytest.approx(np.std([dice["unet", 0].mean(), dice["unet", 1].mean()], ddof=1))
    assert wt["difference"] == pytest.approx(np.mean([dice["ganet", s] - dice["unet", s] for s in (0, 1)]))
    assert wt["ci_low"] <= wt["difference"] <= wt["ci_high"]
    assert summary["sentence"] in out and (run_dir / "figures" / "06_ablation.png").is_file()
    assert set(summary["training_seconds"]["1"]) == {"gan", "ganet", "unet"}
    # `ganet results` writes the same numbers with the commit and the machine, atomically.
    results = tmp_path / "docs" / "results.md"
    assert main(["results", "--run", str(run_dir), "--out", str(results)]) == 0
    text = results.read_text()
    assert summary["sentence"] in text and "commit " in text and "CPU cores" in text
    assert f"{wt['difference']:+.3f}" in text and open_run(run_dir).config.profile in text
    assert not list(results.parent.glob(".*partial*"))
