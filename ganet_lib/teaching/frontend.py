"""Is a person looking? Widget cells build their controls only when a front end shows the notebook.

Why: executing a cell that creates ipywidgets headlessly (papermill, nbval, nbconvert, all on
nbclient) sometimes blocks forever (nbclient #312, papermill #711/#723; seen here once in
`./run_all.sh` on a busy 2-core machine). Headless runs have no use for controls nobody can
move, so the kit's widget cells create none there: the plain cell before each one draws the same
figure, and a headless run never opens a widget comm at all. That removes the hang by design
instead of hoping the race is rare; the per-cell time limit of `run_all.sh` and nbval is the
second line of defence.

How: a Jupyter server (JupyterLab, Notebook 7, Voila; VS Code when it connects to a server)
starts each kernel with `JPY_SESSION_NAME` set to the notebook's path (jupyter_server's session
manager); headless executors start kernels through jupyter_client directly and never set it.
`GANET_WIDGETS=1` forces the controls on (a front end that sets no such variable),
`GANET_WIDGETS=0` forces them off.
"""

from __future__ import annotations

import os

from ganet_lib.run import RUN_ENV

FORCE_VARIABLE = "GANET_WIDGETS"


def front_end_attached() -> bool:
    """True when this kernel was started by a front end that can show widgets (see the module doc)."""
    forced = os.environ.get(FORCE_VARIABLE, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return bool(os.environ.get("JPY_SESSION_NAME"))


INTERACTIVE_PROFILE = "smoke"  # in JupyterLab: seconds per cell on 2 cores (default: minutes before any exercise)


def notebook_profile(profile: str, run_dir: str = "") -> str:
    """The profile a notebook runs: the one given (`./run_all.sh` and papermill always give one), else
    $GANET_PROFILE, else "" when a run folder is named (`run_dir` or $GANET_RUN: it runs with its own
    settings, see `run.setup_run`), else `INTERACTIVE_PROFILE` when a person is looking (JupyterLab),
    else "" (the default profile). Says so when it picks the interactive one."""
    named_run = run_dir or os.environ.get(RUN_ENV)
    if profile or os.environ.get("GANET_PROFILE") or named_run or not front_end_attached():
        return profile
    print(
        f"profile '{INTERACTIVE_PROFILE}' (the notebooks' choice in JupyterLab: no cell waits more than about a "
        'minute); for the full run set profile = "default" in the parameters cell above, or GANET_PROFILE'
    )
    return INTERACTIVE_PROFILE
