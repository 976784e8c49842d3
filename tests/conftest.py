"""Shared fixtures of the unit tests (the session's environment is set in the root conftest.py)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

from ganet_lib.data.synthetic import SynthSpec, write_synthetic_dataset

matplotlib.use("Agg")

SMALL_SHAPE = (40, 40, 24)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic data set (3 BraTS-layout subjects, 2 NFBS-layout subjects), made once per session.

    Tests must not modify it: copy what you want to break.
    """
    root = tmp_path_factory.mktemp("synthetic") / "data"
    return write_synthetic_dataset(root, SynthSpec(cases=3, normals=2, shape=SMALL_SHAPE, seed=7), progress=False)
