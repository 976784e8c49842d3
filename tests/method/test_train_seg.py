import json
import math
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from ganet_lib.checkpoint import load_checkpoint
from ganet_lib.method.seg_data import seg_caches, seg_datasets, training_ids, validation_ids
from ganet_lib.method.train_gan import pretrain_gan_for_run
from ganet_lib.method.train_seg import train_segmentation_for_run
from ganet_lib.run import setup_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A smoke run with its GAN pre-trained (2 epochs)."""
    run = setup_run("smoke", str(tmp_path_factory.mktemp("segrun")), progress=False)
    pretrain_gan_for_run(run, progress=False)
    return run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_phase_one_is_the_plain_unet_then_the_feedback_starts(run):
    ganet = train_segmentation_for_run(run, "ganet", progress=False)
    unet = train_segmentation_for_run(run, "unet", progress=False)
    start = run.config.seg.adversarial_from_epoch  # 1 in the smoke profile
    # Phase 1 (Eq. 8): the segmentation loss only, so both variants are the same computation.
    for g_row, u_row in zip(ganet.history[:start], unet.history[:start]):
        assert math.isnan(g_row["loss_adv"]) and g_row["loss_seg"] == u_row["loss_seg"]
    # Phase 2 (Eq. 9): every term and weight is there, finite, with lambda_seg = 1.
    for row in ganet.history[start:]:
        for term in ("seg", "sparsity", "adv", "size"):
            assert math.isfinite(row[f"loss_{term}"]) and row[f"weight_{term}"] > 0, term
        assert row["weight_seg"] == 1.0
    assert all(math.isnan(row["loss_adv"]) for row in unet.history)
    assert ganet.history[-1]["loss_seg"] != unet.history[-1]["loss_seg"]
    # The learning rate follows the polynomial decay of paper 5.4.1: lr_e = lr * (1 - e / epochs) ** 0.75.
    epochs = run.config.seg.epochs
    assert [row["lr"] for row in ganet.history] == pytest.approx(
        [run.config.seg.lr * (1 - e / epochs) ** 0.75 for e in range(epochs)], rel=1e-12
    )


def test_resume_reproduces_the_uninterrupted_run(run, tmp_path):
    import ganet_lib.method.train_seg as train_seg

    straight = train_segmentation_for_run(run, "ganet", progress=False)
    # The same training, interrupted after one epoch and resumed, in another folder.
    train_set, val_set = seg_datasets(run, training_ids(run), False), seg_datasets(run, validation_ids(run), False)
    gan = run.gan.best
    train_seg.train_segmentation(
        train_set, val_set, tmp_path, run.config, "ganet", gan, cpu=True, progress=False, max_epochs=1
    )
    train_seg.train_segmentation(
        train_set, val_set, tmp_path, run.config, "ganet", gan, resume=True, cpu=True, progress=False
    )
    first, second = load_checkpoint(straight.last_checkpoint), load_checkpoint(tmp_path / "last.pt")
    for name, tensor in first["model"].items():
        assert torch.equal(tensor, second["model"][name]), name


def test_two_processes_score_each_validation_slice_once(run, tmp_path):
    """Validation Dice of one checkpoint: 2 CPU processes (gloo) give the 1-process figures."""
    checkpoint = train_segmentation_for_run(run, "unet", resume=True, progress=False).last_checkpoint
    images, t1 = seg_caches(run, progress=False)
    ids = ",".join(validation_ids(run))
    worker = Path(__file__).with_name("distributed_worker.py")
    results = []
    # Loopback only, on a port the OS says is free, so nothing else on the machine can collide with
    # it. (A CI failure of this test was a gloo rank aborting at exit; the worker now ends its group.)
    environment = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    for processes in (1, 2):
        out = tmp_path / f"scores-{processes}.json"
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            str(worker),
            str(checkpoint),
            str(images),
            str(t1),
            ids,
            "5",
            str(out),
        ]  # 5: batches do not split evenly
        finished = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
        assert finished.returncode == 0, f"{processes} process(es) failed:\n{finished.stderr[-4000:]}"
        results.append(json.loads(out.read_text()))
    one, two = results
    assert (one["processes"], two["processes"]) == (1, 2)
    assert one["dataset_slices"] % 10 != 0  # so 2 processes x batches of 5 need padding
    assert one["val_slices"] == two["val_slices"] == one["dataset_slices"]  # no slice counted twice
    for key in ("val_dice_WT", "val_dice_TC", "val_dice_ET"):
        assert two[key] == pytest.approx(one[key], abs=1e-9), key


def spy(calls: Counter, name: str, function):
    """`function`, counting its calls in `calls[name]`: a student's function the trainer should call."""

    def student(*args):
        calls[name] += 1
        return function(*args)

    return student


def test_the_trainer_runs_the_loss_terms_it_is_given(run, tmp_path):
    """A student's functions (here spies around the kit's) enter the real training step: each is
    called, and with the kit's own lines inside them the weights are the kit's, tensor for tensor."""
    from dataclasses import fields

    from ganet_lib.method.train_seg import KIT_TERMS, LossTerms, train_segmentation

    calls = Counter()
    spies = LossTerms(**{f.name: spy(calls, f.name, getattr(KIT_TERMS, f.name)) for f in fields(LossTerms)})
    train_set, val_set = seg_datasets(run, training_ids(run), False), seg_datasets(run, validation_ids(run), False)

    def train(folder, terms):
        result = train_segmentation(
            train_set,
            val_set,
            out_dir=tmp_path / folder,
            config=run.config,
            variant="ganet",
            gan_checkpoint=run.gan.best,
            cpu=True,
            progress=False,
            loss_terms=terms,
        )
        return load_checkpoint(result.last_checkpoint)

    spied, kit = train("spied", spies), train("kit", KIT_TERMS)
    assert set(calls) == {"edge_map", "l_adv", "dynamic_weights", "soft_dice_loss"} and min(calls.values()) > 0
    for name, tensor in kit["model"].items():
        assert torch.equal(tensor, spied["model"][name]), name
    assert spied["settings"] != kit["settings"]  # other terms, other settings: never resumed into each other
