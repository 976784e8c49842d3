"""Checkpoints: safe loading."""

import pytest
import torch

from ganet_lib.checkpoint import load_checkpoint, save_checkpoint
from ganet_lib.errors import KitInputError


class NotATensor:
    pass


def test_checkpoint_needing_arbitrary_unpickling_is_refused(tmp_path):
    torch.save({"model": NotATensor()}, tmp_path / "evil.pt")
    with pytest.raises(KitInputError, match="arbitrary unpickling"):
        load_checkpoint(tmp_path / "evil.pt")
    save_checkpoint({"weights": torch.ones(2), "epoch": 3}, tmp_path / "ok.pt")
    assert load_checkpoint(tmp_path / "ok.pt")["epoch"] == 3
    with pytest.raises(KitInputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
