"""Child processes of a notebook run: find them and stop them (psutil: Linux and macOS alike).

A Jupyter kernel is started in a session of its own (jupyter_client does this so that an
interrupt reaches the kernel's whole process group), so Ctrl-C in a terminal and a SIGTERM to the
runner never reach it. Whoever stops a run must stop its kernels too, or they outlive it.
"""

from __future__ import annotations

import os
import signal
import time

import psutil


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, finished but not yet reaped, counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def descendants(pid: int) -> list[int]:
    """Every living process below `pid` (children, grandchildren, ...), parents first."""
    try:
        below = psutil.Process(pid).children(recursive=True)  # a parent is listed before its children
    except psutil.NoSuchProcess:
        return []
    return [process.pid for process in below if alive(process.pid)]


def stop(pids: list[int], grace_seconds: float = 5.0) -> None:
    """SIGTERM `pids`, then SIGKILL whatever still runs after `grace_seconds`.

    Signals and polling rather than psutil's `wait_procs`: that would reap (wait for) our own
    children behind the back of the `subprocess.Popen` objects that own them.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace_seconds
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not any(alive(pid) for pid in pids):
            return


def stop_tree(pid: int, grace_seconds: float = 5.0) -> None:
    """Stop `pid` and every process below it (its descendants are listed first: once it is gone,
    they would be re-parented and no longer found under it)."""
    stop([pid, *descendants(pid)], grace_seconds)
