"""run_all.sh's engine: stop on a failing notebook, a cell over its limit or a signal; resume after the
last completed notebook; the report."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from ganet_lib.run import setup_run
from ganet_lib.runner import processes
from ganet_lib.runner.pipeline import run_notebooks
from ganet_lib.runner.report import write_report

ROOT = Path(__file__).resolve().parents[2]


def write_notebook(path: Path, body: str) -> Path:
    book = nbformat.v4.new_notebook()
    book.metadata = {"kernelspec": {"name": "ganet-kit", "display_name": "Python (ganet-kit)", "language": "python"}}
    parameters = nbformat.v4.new_code_cell('profile: str = ""  # profile\nrun_dir: str = ""  # run folder')
    parameters.metadata["tags"] = ["parameters"]
    book.cells = [parameters, nbformat.v4.new_code_cell(body)]
    nbformat.write(book, path)
    return path


def test_a_failing_notebook_stops_the_run_and_the_rerun_resumes_after_the_last_completed(tmp_path, capsys):
    folder = tmp_path / "nb"
    folder.mkdir()
    first = write_notebook(
        folder / "01_count.ipynb",
        "from pathlib import Path\np = Path(run_dir) / 'count'\np.write_text(str(int(p.read_text()) + 1 if p.exists() "
        "else 1))",
    )
    second = write_notebook(
        folder / "02_check.ipynb",
        "from pathlib import Path\nassert not (Path(run_dir) / 'fail').exists(), 'told to fail'",
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "fail").touch()
    parameters = {"profile": "smoke", "run_dir": str(run_dir)}

    assert run_notebooks(parameters, run_dir, [first, second], report=False) == 1
    err = capsys.readouterr().err
    assert (
        "02_check.ipynb failed" in err
        and "told to fail" in err
        and str(run_dir / "notebooks" / "02_check.ipynb") in err
    )
    assert (run_dir / "count").read_text() == "1"

    (run_dir / "fail").unlink()
    assert run_notebooks(parameters, run_dir, [first, second], report=False) == 0
    out = capsys.readouterr().out
    assert "01_count.ipynb: completed in the interrupted run" in out
    assert (run_dir / "count").read_text() == "1"  # not run again
    with open(run_dir / "timings.tsv", newline="") as handle:
        assert [row["notebook"] for row in csv.DictReader(handle, delimiter="\t")] == [
            "01_count.ipynb",
            "02_check.ipynb",
        ]
    assert not (run_dir / "notebooks" / "progress.json").exists()

    assert run_notebooks(parameters, run_dir, [first, second], report=False) == 0  # complete before: everything runs
    assert (run_dir / "count").read_text() == "2"
    assert json.loads((run_dir / "run_summary.json").read_text())["skipped"] == []


def test_paper_profile_refuses_to_start_without_data(tmp_path):
    env = {**os.environ, "GANET_RUNS": str(tmp_path)}
    env.pop("GANET_BRATS_DIR", None)
    env.pop("GANET_NFBS_DIR", None)
    result = subprocess.run([str(ROOT / "run_all.sh"), "--profile", "paper"], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--brats DIR and --nfbs DIR" in lines[0]
    assert not (tmp_path / "paper").exists()  # nothing started


def test_paper_profile_refuses_data_that_fails_validation(tmp_path):
    brats, nfbs = tmp_path / "brats", tmp_path / "nfbs"
    brats.mkdir()
    nfbs.mkdir()
    result = subprocess.run(
        [str(ROOT / "run_all.sh"), "--profile", "paper", "--brats", str(brats), "--nfbs", str(nfbs)],
        capture_output=True,
        text=True,
        env={**os.environ, "GANET_RUNS": str(tmp_path / "runs")},
    )
    assert result.returncode == 2
    assert "failed 'ganet validate'" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "runs" / "paper").exists()


UNKNOWN_SETTING = (
    "unknown setting(s) synthetic_cases under 'ExperimentConfig'; known ones are profile, data, preprocess, model, "
    "gan, seg, notebooks, detector."
)


def test_run_all_with_an_unknown_setting_prints_the_sentence_alone_and_exits_2(tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("extends: smoke\nsynthetic_cases: 6  # belongs under data:\n")
    result = subprocess.run(
        [str(ROOT / "run_all.sh"), "--profile", str(profile)],
        capture_output=True,
        text=True,
        env={**os.environ, "GANET_RUNS": str(tmp_path / "runs")},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines() == [f"error: {profile}: {UNKNOWN_SETTING}"]
    assert not (tmp_path / "runs" / "mine").exists()  # nothing started


def run_pipeline(*arguments: str) -> subprocess.CompletedProcess:
    """`python -m ganet_lib.runner.pipeline ARGUMENTS` (what run_all.sh executes), its output captured."""
    command = [sys.executable, "-m", "ganet_lib.runner.pipeline", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_pipeline_turns_bad_input_into_one_sentence_and_exit_2(tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("extends: smoke\nsynthetic_cases: 6\n")
    unknown = run_pipeline("--profile", str(profile), "--run", str(tmp_path / "run"))
    empty = run_pipeline("--profile", "smoke", "--run", str(tmp_path / "run"), "--notebooks", str(tmp_path / "none"))
    for result in (unknown, empty):
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert unknown.stderr.strip().splitlines() == [f"error: {profile}: {UNKNOWN_SETTING}"]
    assert empty.stderr.strip().splitlines() == [
        f"error: There is no notebook NN_*.ipynb in '{tmp_path / 'none'}'; pass --notebooks DIR with the kit's "
        "notebooks/ or a student edition."
    ]


def test_a_notebook_that_meets_bad_input_stops_the_run_with_its_sentence_and_exit_2(tmp_path):
    folder = tmp_path / "nb"
    folder.mkdir()
    write_notebook(
        folder / "01_data.ipynb",
        "from ganet_lib.errors import KitInputError\n"
        "raise KitInputError(\"The folder 'brats' holds no subject; see data/README.md.\")",
    )
    run_dir = tmp_path / "run"
    result = run_pipeline("--profile", "smoke", "--run", str(run_dir), "--notebooks", str(folder))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 01_data.ipynb: The folder 'brats' holds no subject; see data/README.md. (the executed notebook: "
        f"{run_dir / 'notebooks' / '01_data.ipynb'}; after the fix the same command resumes with this notebook)"
    )


def test_report_gathers_the_tables(tmp_path):
    run = setup_run("smoke", str(tmp_path), progress=False)
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "table1_sweep.csv").write_text(
        "threshold,accuracy,sensitivity,specificity,TP,FN,FP,TN\n0.3,0.75,0.5,0.875,2,2,1,7\n"
    )
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "ganet_brats.csv").write_text(
        "subject,region,dice,hd95,lw_dice,lw_hd95,tp,fn,fp\n"
        "a,WT,0.9,3,0.8,10,1,0,0\nb,WT,0.8,4,0.6,20,1,0,1\n"
        "a,TC,0.5,5,0.5,5,1,0,0\nb,TC,0.7,7,0.7,7,1,0,0\n"
        "a,ET,0.6,2,0.6,2,1,0,0\nb,ET,0.6,2,0.6,2,1,0,0\n"
    )
    (tmp_path / "run_summary.json").write_text(
        json.dumps(
            {
                "timings": [{"notebook": "01_data.ipynb", "seconds": 12.5}],
                "wall_seconds": 13,
                "peak_mb": 400,
                "reused": ["GAN checkpoint"],
                "rebuilt": [],
                "skipped": [],
            }
        )
    )
    text = write_report(tmp_path).read_text()
    assert "| 0.3 | 75.00% | 50.00% | 87.50% | 2 | 2 | 1 | 7 |" in text
    # Table 2 from metrics/ganet_brats.csv alone, columns WT ET TC: Dice %, HD95, LW Dice %
    assert (
        "| kit: ganet (brats) | 85 | 60 | 60 | 3.5 | 2 | 6 | 70 | 60 | 60 |  |  |  | synthetic data, 2 test subjects"
        in text
    )
    assert "| paper: GANnet-Seg | 81.28 |" in text
    assert "| 01_data.ipynb | 12.5 |" in text and "Reused (settings unchanged): GAN checkpoint" in text
    assert "Synthetic segmentation data" in text and run.config.profile in text
    assert (
        "| ganet | post-processed | 0.85 | 0.6 | 0.6 | 3.5 | 6 | 2 |" in text
    )  # ablation (WT TC ET), no training history: s/epoch empty


def test_report_says_what_a_run_did_not_compute(tmp_path):
    setup_run("smoke", str(tmp_path), progress=False)
    text = write_report(tmp_path).read_text()
    assert "Not computed in this run (notebook 05" in text
    assert "Not computed in this run (notebook 06" in text
    assert "Not computed in this run (notebooks 04 and 06)" in text


def test_a_cell_over_its_time_limit_fails_the_run_naming_notebook_cell_and_limit(tmp_path, capsys):
    folder = tmp_path / "nb"
    folder.mkdir()
    first = write_notebook(folder / "01_quick.ipynb", "x = 1")
    slow = write_notebook(
        folder / "02_slow.ipynb", "import time\ntime.sleep(60)  # stands for a cell that never returns"
    )
    run_dir = tmp_path / "run"
    parameters = {"profile": "smoke", "run_dir": str(run_dir)}

    started = time.monotonic()
    assert run_notebooks(parameters, run_dir, [first, slow], report=False, cell_timeout_s=3) == 1
    assert time.monotonic() - started < 45  # bounded by the limit, not by the 60 s sleep
    errors = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")
    ]  # (the rest: progress bars)
    assert len(errors) == 1, errors
    assert "02_slow.ipynb: cell 3 of 3 (`import time`) ran past its limit of 3 s" in errors[0]
    assert "run the same command again to resume" in errors[0]
    progress = json.loads((run_dir / "notebooks" / "progress.json").read_text())
    assert progress["completed"] == ["01_quick.ipynb"]  # the same command resumes with 02


def kernels_of_this_test(marker: str) -> list[int]:
    """Living ipykernel processes whose connection file or cwd ties them to this test's run."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if "ipykernel" in command and marker in cwd and processes.alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_kernel_exits_non_zero_and_the_next_run_resumes(tmp_path, signum, status):
    folder = tmp_path / "nb"
    folder.mkdir()
    write_notebook(
        folder / "01_count.ipynb",
        "from pathlib import Path\np = Path(run_dir) / 'count'\np.write_text(str(int(p.read_text()) + 1 if p.exists() "
        "else 1))",
    )
    write_notebook(
        folder / "02_wait.ipynb",
        "import os, time\nfrom pathlib import Path\n(Path(run_dir) / 'kernel.pid').write_text(str(os.getpid()))\n"
        "while (Path(run_dir) / 'wait').exists():\n    time.sleep(0.1)",
    )
    run_dir = tmp_path / "run"
    setup_run("smoke", str(run_dir), progress=False)  # the report at the end reads the run's config
    (run_dir / "wait").touch()
    command = [
        sys.executable,
        "-m",
        "ganet_lib.runner.pipeline",
        "--profile",
        "smoke",
        "--run",
        str(run_dir),
        "--notebooks",
        str(folder),
    ]

    runner = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run_dir / "kernel.pid").exists():
        assert runner.poll() is None and time.monotonic() < deadline, runner.communicate()
        time.sleep(0.1)
    kernel = int((run_dir / "kernel.pid").read_text())
    assert processes.alive(kernel)
    runner.send_signal(signum)
    _, err = runner.communicate(timeout=60)

    assert runner.returncode == status, err
    assert err.strip().splitlines()[-1] == (
        f"stopped by {signal.Signals(signum).name} during 02_wait.ipynb (1 of 2 notebooks completed and kept): "
        "run the same command again to resume with 02_wait.ipynb."
    )
    assert not processes.alive(kernel)
    assert kernels_of_this_test(str(folder)) == []
    assert json.loads((run_dir / "notebooks" / "progress.json").read_text())["completed"] == ["01_count.ipynb"]

    (run_dir / "wait").unlink()
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert "01_count.ipynb: completed in the interrupted run" in rerun.stdout
    assert (run_dir / "count").read_text() == "1"  # not run again


def _cmdline(pid: int) -> str:
    """A process's command line, or "" once it has exited (a short-lived child can go between listing and reading)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


def test_run_all_exits_143_on_sigterm_and_leaves_no_kernel(tmp_path):
    runner = subprocess.Popen(
        [str(ROOT / "run_all.sh"), "--profile", "smoke"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GANET_RUNS": str(tmp_path)},
    )
    deadline = time.monotonic() + 120
    while not (kernels := [pid for pid in processes.descendants(runner.pid) if "ipykernel" in _cmdline(pid)]):
        assert runner.poll() is None and time.monotonic() < deadline, runner.communicate()
        time.sleep(0.1)
    runner.terminate()
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 143, err
    assert "stopped by SIGTERM during 01_data.ipynb" in err.strip().splitlines()[-1]
    assert not any(processes.alive(pid) for pid in kernels)
