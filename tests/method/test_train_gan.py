import math
from pathlib import Path

import pytest
import torch

from ganet_lib.checkpoint import load_checkpoint
from ganet_lib.config import GanConfig, ModelConfig, PreprocessConfig
from ganet_lib.data.cases import find_nfbs_subjects
from ganet_lib.method.networks import build_gan
from ganet_lib.method.preprocess import SliceCache, build_normal_cache
from ganet_lib.method.train_gan import pretrain_gan, random_holes

MODEL = ModelConfig(gen_channels=(4, 8, 16), disc_channels=4)
GAN = GanConfig(epochs=3, batch_size=8, patience=100, seed=3)


def test_random_holes_lie_in_the_brain_and_repeat_with_the_seed():
    brain = torch.zeros(6, 1, 32, 32, dtype=torch.bool)
    brain[:, :, 4:28, 6:26] = True
    brain[5] = False  # an empty slice
    first = random_holes(brain, torch.Generator().manual_seed(1), 0.1, 0.2)
    again = random_holes(brain, torch.Generator().manual_seed(1), 0.1, 0.2)
    assert torch.equal(first, again)
    assert torch.all(first[~brain] == 0)
    area = first.sum(dim=(1, 2, 3))
    assert torch.all(area[:5] > 0) and area[5] == 0
    assert torch.all(area <= (2 * 0.2 * 32 + 1) ** 2)  # no hole larger than the largest square


@pytest.fixture(scope="module")
def normal_cache(synthetic_root, tmp_path_factory) -> Path:
    subjects = find_nfbs_subjects(synthetic_root / "nfbs")
    settings = PreprocessConfig(image_size=32, enhance=False, min_brain_pixels=16)
    return build_normal_cache(subjects, tmp_path_factory.mktemp("normals"), settings, progress=False)


def _train(normal_cache, out_dir, **kwargs):
    ids = [c["case_id"] for c in SliceCache(normal_cache).cases]
    return pretrain_gan(normal_cache, ids[-1:], out_dir, MODEL, GAN, "{}", cpu=True, progress=False, **kwargs)


def test_a_few_real_steps(normal_cache, tmp_path):
    result = _train(normal_cache, tmp_path)
    history = result.history
    assert len(history) == 3
    for row in history:
        for key in ("g_adv", "g_l1", "val_hole_l1", "val_psnr"):
            assert math.isfinite(row[key]), key
    assert math.isfinite(history[0]["d_loss"])  # the first G step is followed by a D step
    ids = [c["case_id"] for c in SliceCache(normal_cache).cases]
    train_slices = len(SliceCache(normal_cache, ids[:-1]))
    g_steps = 3 * math.ceil(train_slices / GAN.batch_size)
    assert history[-1]["g_steps"] == g_steps
    assert history[-1]["d_steps"] == math.ceil(g_steps / GAN.d_every)  # one D update per five G updates

    checkpoint = load_checkpoint(result.last_checkpoint)
    initial_g, initial_d = build_gan(MODEL, GAN.seed)
    for name, tensor in initial_g.state_dict().items():
        if name.endswith("weight"):
            assert not torch.equal(tensor, checkpoint["generator"][name]), f"generator {name} did not change"
    assert any(not torch.equal(t, checkpoint["discriminator"][n]) for n, t in initial_d.state_dict().items())
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 4  # header + 3 epochs
    assert sorted(p.name for p in tmp_path.glob("inpainting_epoch*.png")) == [
        f"inpainting_epoch00{k}.png" for k in (1, 2, 3)
    ]


def test_resume_reproduces_the_uninterrupted_run_exactly(normal_cache, tmp_path):
    _train(normal_cache, tmp_path / "straight")
    _train(normal_cache, tmp_path / "interrupted", max_epochs=1)
    assert load_checkpoint(tmp_path / "interrupted" / "last.pt")["epoch"] == 0
    resumed = _train(normal_cache, tmp_path / "interrupted", resume=True)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    again = load_checkpoint(tmp_path / "interrupted" / "last.pt")
    for part in ("generator", "discriminator"):
        for name, tensor in straight[part].items():
            assert torch.equal(tensor, again[part][name]), f"{part}.{name} differs after resuming"
