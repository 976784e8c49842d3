"""The package on its own: `pip install .` into a clean virtual environment, from pyproject.toml alone
(no requirements.txt), gives a `ganet` that trains.

torch goes in first, pinned from requirements-torch.txt, as the README tells a pip user to do: left
to pip, an unpinned "torch" resolves to a CUDA build of several GB. Minutes; needs PyPI or a pip cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 900  # each step; no install waits forever


def step(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=LIMIT_S, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    return result


def test_pip_install_from_pyproject_alone_gives_a_ganet_that_trains(tmp_path):
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ and *.egg-info behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "ganet_lib", source / "ganet_lib", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    step([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    step(
        [
            python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
            str(ROOT / "requirements-torch.txt"),
        ]
    )
    step([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", str(source)])

    env = {key: value for key, value in os.environ.items() if not key.startswith(("GANET_", "PYTHON"))}
    work = tmp_path / "work"  # not the checkout: the installed package must not find ganet_lib/ beside it
    work.mkdir()
    ganet = str(venv / "bin" / "ganet")
    step([ganet, "pretrain-gan", "--config", "smoke"], cwd=work, env=env)
    trained = step([ganet, "train-seg", "--config", "smoke"], cwd=work, env=env)
    assert "ganet: 3 epoch(s)" in trained.stdout
    # Outside a checkout, run folders go to ./runs of the current folder.
    assert (work / "runs" / "smoke" / "gan" / "best.pt").is_file()
    assert (work / "runs" / "smoke" / "seg-ganet" / "best.pt").is_file()
    site = step([python, "-c", "import ganet_lib; print(ganet_lib.__file__)"], cwd=work, env=env).stdout
    assert str(venv) in site  # the installed copy ran, not the checkout
