"""The notebooks' learning checks: what stops a run, and what is a finding to report.

Two kinds (the message of a failed check says which it is):

- `TRAINING`: the training itself failed (a generator that cannot beat a flat fill): nothing
  downstream means anything, on any data, so a failure stops the run.
- `KIT_GUARD`: a level the kit is known to reach on its own embedded synthetic data (WT Dice 0.80,
  an adversarial term that rises with the missed tumour, a discriminator above chance). There a
  failure means the kit broke, and it stops the run. On a researcher's own data the same number
  is a result of the method on that data: it is printed and reported (`report.md`, "Checks"), and
  the run goes on.

`notebooks.learning_checks: false` in a profile turns every stop into a report (the smoke profile
does: seconds of training learn nothing). Every check's outcome is kept in RUN/tables/checks.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from ganet_lib.files import atomic_write_text
from ganet_lib.run import RunLayout

TRAINING = "training"
KIT_GUARD = "kit-guard"
FILE_NAME = "checks.json"


class LearningCheckFailed(AssertionError):
    """A check that stops the run (the message says why and how to carry on instead)."""


def learning_check(run, notebook: str, name: str, passed: bool, detail: str, kind: str) -> bool:
    """Print, record and enforce one check of `notebook`; returns `passed`.

    Raises:
        LearningCheckFailed: the check failed and stops this run (see the module docstring).
    """
    if kind not in (TRAINING, KIT_GUARD):
        raise ValueError(f"unknown check kind {kind!r}")
    enforced = run.config.notebooks.learning_checks
    stops = not passed and enforced and (kind == TRAINING or run.embedded_data)
    outcome = "pass" if passed else "stop" if stops else "finding" if enforced else "off"
    _record(run, notebook, name, {"passed": passed, "detail": detail, "kind": kind, "outcome": outcome})
    if passed:
        print(f"PASS     {name}: {detail}")
        return True
    if stops:
        why = (
            "the training failed, and nothing after it would mean anything on any data"
            if kind == TRAINING
            else "the kit reaches this on its embedded synthetic data, so failing it there means the kit broke"
        )
        raise LearningCheckFailed(
            f"{name} failed ({detail}). This check stops the run because {why}; "
            "`notebooks.learning_checks: false` in the profile reports it instead and carries on."
        )
    if not enforced:
        print(f"FAIL     {name}: {detail} (notebooks.learning_checks is off in this profile: reported, not enforced)")
    else:
        print(
            f"FINDING  {name}: {detail}. On data other than the kit's embedded synthetic data this is a result of the "
            "method on that data, not a fault of the kit: the run goes on and the report lists it under 'Checks'."
        )
    return False


def _record(run, notebook: str, name: str, entry: dict) -> None:
    path = run.table_path(FILE_NAME)
    checks = json.loads(path.read_text()) if path.is_file() else {}
    checks[name] = {"notebook": notebook, **entry}
    atomic_write_text(path, json.dumps(checks, indent=1))


def read_checks(run_dir) -> dict:
    """RUN/tables/checks.json ({} when no check ran)."""
    path = RunLayout(Path(run_dir)).tables_dir / FILE_NAME
    return json.loads(path.read_text()) if path.is_file() else {}
