import subprocess
import sys

from ganet_lib.runner.cli import main


def test_preprocess_builds_then_reuses_the_cache(tmp_path, capsys):
    assert main(["preprocess", "--config", "smoke", "--run", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    assert "slice cache:" in first and "synthetic data" in first
    caches = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(caches) == 1 and caches[0].startswith("slices-")
    assert main(["preprocess", "--config", "smoke", "--run", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == first.splitlines()[-1]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == caches


def test_unknown_profile_is_exit_2_with_one_sentence(tmp_path, capsys):
    assert main(["preprocess", "--config", "no-such-profile", "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no-such-profile" in err[0]


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "ganet_lib", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("synth", "validate", "preprocess"):
        assert command in result.stdout


def test_pretrain_gan_then_resume_reuses_the_finished_run(tmp_path, capsys):
    assert main(["pretrain-gan", "--config", "smoke", "--run", str(tmp_path), "--cpu"]) == 0
    assert (tmp_path / "gan" / "last.pt").is_file() and (tmp_path / "gan" / "metrics.csv").is_file()
    before = (tmp_path / "gan" / "last.pt").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["pretrain-gan", "--config", "smoke", "--run", str(tmp_path), "--cpu", "--resume"]) == 0
    assert "reusing the finished" in capsys.readouterr().out
    assert (tmp_path / "gan" / "last.pt").stat().st_mtime_ns == before  # nothing retrained


def test_train_seg_needs_the_gan_then_trains(tmp_path, capsys):
    assert main(["train-seg", "--config", "smoke", "--run", str(tmp_path), "--variant", "ganet", "--cpu"]) == 2
    errors = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")
    ]  # (progress bars also go to stderr)
    assert len(errors) == 1 and "pretrain-gan" in errors[0] and "gan/best.pt" in errors[0]
    assert main(["pretrain-gan", "--config", "smoke", "--run", str(tmp_path), "--cpu"]) == 0
    assert main(["train-seg", "--config", "smoke", "--run", str(tmp_path), "--variant", "ganet", "--cpu"]) == 0
    assert "ganet: 3 epoch(s); best validation Dice WT" in capsys.readouterr().out
    assert (tmp_path / "seg-ganet" / "best.pt").is_file() and (tmp_path / "seg-ganet" / "metrics.csv").is_file()


def test_a_command_takes_its_process_group_down_when_it_ends(tmp_path, capsys):
    """Under accelerate launch / torchrun the commands destroy the process group before exit (left to
    interpreter shutdown, a gloo rank could abort). Here a 1-process gloo group stands in."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert main(["preprocess", "--config", "no-such-profile", "--run", str(tmp_path / "run")]) == 2
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
