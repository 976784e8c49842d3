"""Child processes of a notebook run: find them and stop them (Linux /proc; elsewhere, nothing).

A Jupyter kernel is started in a session of its own (jupyter_client does this so that an
interrupt reaches the kernel's whole process group), so Ctrl-C in a terminal and a SIGTERM to the
runner never reach it. Whoever stops a run must stop its kernels too, or they outlive it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _parent_and_state(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or no /proc
        return None
    # "pid (command) state ppid ...": the command may hold spaces and parentheses
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0]


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, finished but not yet reaped, counts as gone)."""
    found = _parent_and_state(pid)
    return found is not None and found[1] != "Z"


def descendants(pid: int) -> list[int]:
    """Every living process below `pid` (children, grandchildren, ...), parents first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        found = _parent_and_state(int(entry.name))
        if found is not None and found[1] != "Z":
            children.setdefault(found[0], []).append(int(entry.name))
    below, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        below.append(child)
        queue.extend(children.get(child, []))
    return below


def stop(pids: list[int], grace_seconds: float = 5.0) -> None:
    """SIGTERM `pids`, then SIGKILL whatever still runs after `grace_seconds`."""
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
