"""Test-session settings for everything pytest collects (tests/ and, through nbval, notebooks/).

The notebooks run in the 'smoke' profile, into a temporary run root, never into runs/, headless:
their widget cells build no controls (GANET_WIDGETS=0; tests/test_browser.py tries the widgets in
JupyterLab), and every cell has the smoke profile's time limit (notebooks.cell_timeout_s).
nbval starts one kernel per notebook as a child of this process, so these variables reach it.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _temporary_folder(prefix: str) -> str:
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


os.environ["GANET_PROFILE"] = "smoke"
os.environ.setdefault("GANET_RUNS", _temporary_folder("ganet-test-runs-"))
os.environ.setdefault("IPYTHONDIR", _temporary_folder("ganet-ipython-"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["GANET_WIDGETS"] = "0"


def pytest_configure(config):
    if (
        config.getoption("nbval_cell_timeout", default=None) == 2000
    ):  # nbval's own default: not chosen on the command line
        from ganet_lib.config import load_config

        config.option.nbval_cell_timeout = load_config("smoke").notebooks.cell_timeout_s


def pytest_terminal_summary(terminalreporter):
    if not Path(CHROMIUM).is_file():
        terminalreporter.write_line(
            "browser tests NOT RUN: Chromium is missing; `apt-get install chromium` (as root) enables them "
            "(.ci/run does it)",
            yellow=True,
            bold=True,
        )
    # tests/evaluation/test_panoptica.py skips its oracle tests with this phrase in the reason
    oracle_skips = [
        report.longrepr[2]
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and "official BraTS evaluation" in str(report.longrepr[2])
    ]
    if oracle_skips:
        terminalreporter.write_line(
            f"BraTS 2025+ evaluation NOT CHECKED against the official package ({len(oracle_skips)} tests skipped): "
            f"{oracle_skips[0].removeprefix('Skipped: ')}",
            yellow=True,
            bold=True,
        )
