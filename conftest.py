"""Test-session settings for everything pytest collects (tests/ and, through nbval, notebooks/).

The notebooks run in the 'smoke' profile, into a temporary run root, never into runs/.
nbval starts one kernel per notebook as a child of this process, so these variables reach it.
"""

import atexit
import os
import shutil
import tempfile


def _temporary_folder(prefix: str) -> str:
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


os.environ["GANET_PROFILE"] = "smoke"
os.environ.setdefault("GANET_RUNS", _temporary_folder("ganet-test-runs-"))
os.environ.setdefault("IPYTHONDIR", _temporary_folder("ganet-ipython-"))
os.environ.setdefault("MPLBACKEND", "Agg")
