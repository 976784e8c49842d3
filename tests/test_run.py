"""A run folder handed out: a class's notebooks pointed at a copy of the teacher's run (GANET_RUN)
take its settings and reuse its checkpoints and caches instead of training."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import papermill

from ganet_lib.run import RUN_ENV, setup_run
from ganet_lib.runner.pipeline import KERNEL

ROOT = Path(__file__).resolve().parents[1]


def digests(folder: Path, pattern: str) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob(pattern))
    }


def test_a_class_notebook_against_a_copied_run_folder_trains_nothing(tmp_path, monkeypatch):
    teacher = tmp_path / "teacher"
    done = subprocess.run(
        [sys.executable, "-m", "ganet_lib.runner.pipeline", "--profile", "smoke", "--run", str(teacher)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    handed_out = tmp_path / "class" / "run"
    shutil.copytree(teacher, handed_out, copy_function=shutil.copy)  # as `cp -r`: new modification times
    before = digests(handed_out, "*.pt")
    caches = sorted(p.name for p in (handed_out / "cache").iterdir())
    assert len(before) >= 6 and caches

    monkeypatch.delenv("GANET_PROFILE")  # a student's JupyterLab: no profile chosen, only the run folder
    monkeypatch.setenv(RUN_ENV, str(handed_out))
    assert setup_run(progress=False).config.profile == "smoke"  # the run's own settings (config.json)
    outputs = {}
    for name in ("03_gan_pretrain.ipynb", "04_segmentation.ipynb"):
        papermill.execute_notebook(
            ROOT / "notebooks" / name,
            tmp_path / name,
            kernel_name=KERNEL,
            progress_bar=False,
            cwd=str(ROOT / "notebooks"),
        )  # no parameters: as a student opens it
        notebook = json.loads((tmp_path / name).read_text())
        outputs[name] = "".join(
            "".join(output.get("text", ""))
            for cell in notebook["cells"]
            for output in cell.get("outputs", [])
            if cell["cell_type"] == "code"
        )
    after = digests(handed_out, "*.pt")
    # Everything the teacher trained is reused byte for byte; only the student's own short training ran.
    assert {k: v for k, v in after.items() if not k.startswith("your-code/yours/")} == {
        k: v for k, v in before.items() if not k.startswith("your-code/yours/")
    }
    assert sorted(p.name for p in (handed_out / "cache").iterdir()) == caches  # no cache rebuilt
    assert "reusing the finished GAN pre-training" in outputs["03_gan_pretrain.ipynb"]
    for variant in ("ganet", "unet"):
        assert f"reusing the finished {variant} training" in outputs["04_segmentation.ipynb"]
    assert "measured earlier in this run folder" in outputs["04_segmentation.ipynb"]
    assert f"settings of the run folder {handed_out}" in outputs["03_gan_pretrain.ipynb"]
