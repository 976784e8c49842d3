"""Experiment configuration: one frozen dataclass per concern, composed into `ExperimentConfig`.

A profile (`ganet_lib/configs/<name>.yaml`, shipped inside the package) is a YAML file of
overrides on these defaults. The edges of the kit (the command line and the notebooks) load a
profile and hand plain arguments down to the library; library functions never read the config
object themselves.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ganet_lib.errors import KitInputError

REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout, when the kit runs from one (notebooks/, run_all.sh)
CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # package data: also there after `pip install .`
PROFILES = ("smoke", "default", "paper")
VARIANTS = (
    "ganet",
    "unet",
)  # the segmentation trainer with the adversarial feedback (the paper) and without it (the ablation)


@dataclass(frozen=True)
class DataConfig:
    brats_dir: str | None = None  # BraTS root (any supported layout); None -> synthetic data
    nfbs_dir: str | None = None  # NFBS root (nested or flat); None -> synthetic normals
    synthetic_cases: int = 24  # synthetic BraTS-layout subjects written when brats_dir is None
    synthetic_normals: int = 8  # synthetic NFBS-layout subjects written when nfbs_dir is None
    synthetic_shape: tuple[int, int, int] = (96, 96, 64)  # voxels; real BraTS is 240 x 240 x 155
    synthetic_seed: int = 0  # the generator is deterministic per seed
    split_seed: int = 42  # seeded split for data other than the full BraTS 2020 training set
    test_fraction: float = 0.2  # share of subjects held out when the paper's split does not apply
    # (the paper's own split is 36 of 369, about 0.1; on the default profile's 40 synthetic subjects 0.2 keeps 8 for
    # test)
    # The input channels, kept in the order t1, t1ce, t2, flair; the U-Net's input width follows.
    # The GAN and the adversarial feedback work on T1: without t1 only the unet variant trains.
    modalities: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
    labels: str = (
        "auto"  # auto | brats | whole-tumour: what the label maps hold (auto: decided from the files, see labels.py;
        # a run resolves it to brats, brats-rc for post-treatment data with a resection cavity, or whole-tumour)
    )
    label_convention: str = "auto"  # auto | brats2012 | brats2017 | brats2023 | brats2024: how label maps are numbered


@dataclass(frozen=True)
class PreprocessConfig:
    image_size: int = 128  # network input size; the paper uses 128 x 128
    enhance: bool = True  # apply the paper's enhancement (Appendix C, Eqs. 13-17)
    enhance_lambda: float = -0.8  # lambda of Eq. (15)-(16); the paper gives none, -0.8 is the authors' release
    # Per-volume, per-modality normalisation (intensity.py): this brain percentile becomes 0 ...
    low_percentile: float = 0.5
    clip_percentile: float = 99.5  # ... and this one 1, clipped to [0, 1] (0.5 / 99.5: not in the paper)
    drop_empty_slices: bool = True  # drop slices whose label map is empty (paper 5.3)
    min_brain_pixels: int = 64  # slices with fewer brain pixels than this are never cached


@dataclass(frozen=True)
class ModelConfig:
    seg_channels: tuple[int, ...] = (64, 128, 256, 320)  # segmentation U-Net per level (paper 4.1.2)
    seg_activation: str = "relu"  # relu (paper text) or leaky_relu (paper Fig. 5)
    gen_channels: tuple[int, ...] = (64, 128, 256, 512)  # inpainting U-Net per level; not given in the paper
    disc_channels: int = 64  # first PatchGAN layer; then x2, x4, x8 (pix2pix)


@dataclass(frozen=True)
class GanConfig:
    epochs: int = 30  # paper 5.4.2
    batch_size: int = 80  # paper 5.4.2 (per process)
    lr: float = 2e-4  # not in the paper; pix2pix's Adam settings
    beta1: float = 0.5  # not in the paper; pix2pix
    beta2: float = 0.999
    l1_weight: float = 100.0  # weight of the hole L1 term next to Eq. (2); pix2pix and the authors' release use 100
    d_every: int = 5  # one discriminator update per this many generator updates (paper 4.1.1)
    patience: int = 5  # early stopping: epochs without a better validation hole L1 (paper 5.4.2)
    val_fraction: float = 0.2  # share of normal subjects held out for validation
    hole_min: float = 0.06  # hole radius, as a fraction of the image side: smallest ...
    hole_max: float = 0.22  # ... and largest; tumour-sized holes (BraTS WT radii are ~5-25% of the brain)
    seed: int = 0  # seeds model init, shuffling, holes and noise: a CPU run is repeatable
    val_seed: int = 0  # picks the held-out normal subjects; apart from `seed`, so that seeds of an ablation share them
    # The GAN sees normalised T1 without the enhancement: the authors score raw T1 slices with the
    # discriminator (Table 1), and the enhancement's saturation hides T1 tumour contrast (measured
    # on the default profile: discriminator AUC 0.72 without, 0.51 with; see the closing note of
    # the GAN issue).
    enhance_input: bool = False
    # Normal slices for pre-training: nfbs (the paper) or tumour-free-slices, the axial slices of
    # the training subjects whose label map is empty and at least `normal_margin` slices away from
    # any tumour slice (a departure from the paper, for users without NFBS).
    normals: str = "nfbs"
    # 5 slices (5 mm in BraTS's 1 mm grid) is a guess: edema and infiltration fade out beyond the
    # labelled border, and raters disagree most about a tumour's first and last slices.
    normal_margin: int = 5
    mixed_precision: str = "no"  # no | fp16 | bf16 (GPU); Accelerate's setting


@dataclass(frozen=True)
class SegConfig:
    epochs: int = 30  # paper 5.4.1
    batch_size: int = 80  # paper 5.4.1 (per process)
    lr: float = 6e-5  # paper 5.4.1: Adam, lr_e = lr * (1 - e / epochs) ** poly_power
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 1e-4  # paper 5.4.1 (Adam's L2 weight decay)
    poly_power: float = 0.75  # paper 5.4.1
    adversarial_from_epoch: int = 11  # Eqs. (8)-(9): epochs 0-10 (0-based) use the segmentation loss only
    alpha: float = 0.1  # Eq. (5) sparsity weight; not in the paper, the authors' release
    gamma: float = 0.1  # Eq. (6) size weight; not in the paper, the authors' release
    adversarial_weight: float = 0.01  # not in the paper; the authors' release
    weight_eps: float = 1e-8  # Eq. (10) epsilon; not in the paper
    val_fraction: float = 0.1  # training subjects held out for validation (paper: 10 % of slices, seed 42)
    seed: int = 42  # seeds init, shuffling and noise: a CPU run is repeatable
    val_seed: int = 42  # picks the validation subjects; apart from `seed`, so that seeds of an ablation share them
    mixed_precision: str = "no"  # no | fp16 | bf16 (GPU)


@dataclass(frozen=True)
class NotebookConfig:
    # Longest a notebook cell may run before the run fails (run_all.sh; nbval uses the smoke
    # profile's): generous, because training cells take minutes on a CPU, and finite, because a
    # headless widget cell can block forever (see ganet_lib/teaching/frontend.py).
    cell_timeout_s: int = 1800
    # Notebooks 03 and 04 fail the run when the GAN or GANet-Seg did not learn enough; off in the
    # smoke profile (and profiles extending it), whose seconds of training prove nothing.
    learning_checks: bool = True


@dataclass(frozen=True)
class DetectorConfig:
    # The position-controlled protocol of notebook 05: only slices whose brain area is at least this
    # fraction of the subject's largest (the kit's choice; published protocols keep a central range
    # of slices, e.g. 15-135 of 155 in Lagogiannis et al. 2023).
    central_fraction: float = 0.5
    # At most this many normal subjects are read for the histogram of normal-slice positions (notebook 03).
    position_subjects: int = 24


@dataclass(frozen=True)
class ExperimentConfig:
    profile: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    seg: SegConfig = field(default_factory=SegConfig)
    notebooks: NotebookConfig = field(default_factory=NotebookConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def require_t1(config: ExperimentConfig, what: str) -> None:
    """The GAN, the adversarial feedback and the sweep work on T1: refuse `what` in one sentence without it."""
    if "t1" not in config.data.modalities:
        raise KitInputError(
            f"{what} needs T1 (the GAN inpaints and judges T1 slices), which data.modalities "
            f"({', '.join(config.data.modalities)}) "
            "leaves out; add t1, or train only the unet variant."
        )


def _build(cls: type, values: dict[str, Any], source: str) -> Any:
    """Build dataclass `cls` from `values`, recursing into nested dataclasses; unknown keys are errors."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise KitInputError(
            f"{source}: unknown setting(s) {', '.join(unknown)} under '{cls.__name__}'; "
            f"known ones are {', '.join(known)}."
        )
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name) if name in known else None
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise KitInputError(f"{source}: '{name}' must be a mapping of settings, got {value!r}.")
            value = _build(type(default), value, source)
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _extend(values: dict[str, Any], path: Path) -> dict[str, Any]:
    """`extends: <profile>` at the top of a YAML file: that profile's settings, then the file's."""
    base = values.pop("extends", None)
    if base is None:
        return values
    base_path = CONFIG_DIR / f"{base}.yaml"
    if not base_path.is_file():
        raise KitInputError(
            f"Config '{path}' extends '{base}', which is not a profile; use one of {', '.join(PROFILES)}."
        )
    return _merge(yaml.safe_load(base_path.read_text()) or {}, values)


def resolve_profile(profile: str | None) -> str:
    """An empty profile means $GANET_PROFILE, else 'default' (how tests run notebooks in 'smoke')."""
    return profile or os.environ.get("GANET_PROFILE") or "default"


def load_config(profile_or_file: str | None = None, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load a profile by name (`ganet_lib/configs/<name>.yaml`) or a YAML file by path, then apply `overrides`.

    Overrides use the same nesting as the YAML file, e.g. ``{"data": {"brats_dir": "/data/brats"}}``.
    """
    name = resolve_profile(profile_or_file)
    path = Path(name) if name.endswith((".yaml", ".yml")) else CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise KitInputError(
            f"Config '{path}' does not exist; use one of the profiles {', '.join(PROFILES)} or a path to a YAML file."
        )
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise KitInputError(f"Config '{path}' is not valid YAML ({exc}); fix the file.") from exc
    if not isinstance(values, dict):
        raise KitInputError(f"Config '{path}' must hold a mapping of settings at the top level.")
    values = _extend(values, path)
    values.setdefault("profile", path.stem)
    values = _merge(values, overrides or {})
    return _build(ExperimentConfig, values, str(path))


def config_from_json(text: str, source: str = "checkpoint") -> ExperimentConfig:
    """The ExperimentConfig saved as JSON in a checkpoint or run folder."""
    return _build(ExperimentConfig, json.loads(text), source)


def settings_key(config: ExperimentConfig, sections: tuple[str, ...], **extra: object) -> str:
    """JSON of the config sections a result depends on (plus `extra`): a checkpoint made with an
    equal key can be reused or resumed; any other change to the config leaves it valid."""
    values = config.to_dict()
    return json.dumps({**{name: values[name] for name in sections}, **extra}, sort_keys=True)


def commit_description() -> str:
    """`<hash>` of the checkout the kit runs from, '+ uncommitted changes' when there are any."""
    if not (REPO_ROOT / ".git").exists():  # installed with pip: a checkout around site-packages is not the kit's
        return "unknown (not a git checkout)"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes" if dirty else "")
