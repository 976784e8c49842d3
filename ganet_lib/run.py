"""A run folder: the resolved config, the data it uses, and where its artefacts go.

Both edges of the kit start here: `ganet` commands and the notebooks call `setup_run`, which
loads the profile, decides which data to use (real data named by argument, environment variable
or config; otherwise synthetic data generated into the run folder), saves the resolved config and
the train/test split, and hands back paths. Layout of `runs/<profile>/`:

    config.json        the resolved config (every setting, after the profile and overrides; the
                       label scheme and convention as found in the label maps)
    labels.json        the label values found in each label map (read once, see `data.survey_cases`)
    split.json         train/test subject ids and the rule that made them
    synthetic/         generated data, when no real data is configured
    cache/             pre-processed slice caches (keyed by settings)
    figures/, tables/  what the notebooks show, as files
    gan/, seg-<variant>/  a trainer's folder (`TrainingFolder`): last.pt, best.pt, metrics.csv,
                       and beside a U-Net's checkpoint its post-processing, postprocess.json
    predictions/, metrics/  `ganet predict` / `ganet evaluate` outputs per variant (-raw: before
                       post-processing)
    ablation/seed<k>/  the ablation's other seeds, each a run folder of its own
    notebooks/         executed notebooks (written by run_all.sh)

`RunLayout` is the one place that spells these names; everything else asks it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from ganet_lib.config import REPO_ROOT, ExperimentConfig, config_from_json, load_config
from ganet_lib.data.cases import (
    BratsCase,
    NfbsSubject,
    chosen_modalities,
    configure_cases,
    find_brats_cases,
    find_nfbs_subjects,
    split_cases,
    survey_cases,
)
from ganet_lib.data.labels import LabelScheme, scheme_for
from ganet_lib.data.synthetic import SynthSpec, read_spec, write_synthetic_dataset
from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_write_text


def runs_root() -> Path:
    """Where run folders live: $GANET_RUNS, else `runs/` in the kit's checkout (git-ignored), else
    (the package installed with pip, no checkout around it) `runs/` in the current folder."""
    if os.environ.get("GANET_RUNS"):
        return Path(os.environ["GANET_RUNS"])
    return (REPO_ROOT if (REPO_ROOT / "notebooks").is_dir() else Path.cwd()) / "runs"


# predictions/<variant>-raw/, metrics/<variant>-raw_<protocol>.csv: the arg-max before post-processing
RAW_SUFFIX = "-raw"


@dataclass(frozen=True)
class TrainingFolder:
    """What a trainer writes into its folder (`gan/`, `seg-<variant>/`), and what is kept beside a
    checkpoint: `TrainingFolder.of(checkpoint)` for any checkpoint path."""

    path: Path

    @classmethod
    def of(cls, checkpoint: Path | str) -> TrainingFolder:
        return cls(Path(checkpoint).parent)

    @property
    def last(self) -> Path:
        return self.path / "last.pt"  # every epoch: what resuming continues from

    @property
    def best(self) -> Path:
        return self.path / "best.pt"  # the epoch with the best validation score

    @property
    def history(self) -> Path:
        return self.path / "metrics.csv"  # one row per epoch

    @property
    def postprocess_record(self) -> Path:
        return self.path / "postprocess.json"  # the rule chosen on validation for best.pt

    def epoch_figure(self, epoch: int) -> Path:
        return self.path / f"inpainting_epoch{epoch:03d}.png"


@dataclass(frozen=True)
class RunLayout:
    """Every artefact path of a run folder (see the module docstring); needs no config."""

    run_dir: Path

    @property
    def cache_dir(self) -> Path:
        return self.run_dir / "cache"

    @property
    def config_file(self) -> Path:
        return self.run_dir / "config.json"

    @property
    def split_file(self) -> Path:
        return self.run_dir / "split.json"

    @property
    def labels_file(self) -> Path:
        return self.run_dir / "labels.json"

    @property
    def synthetic_dir(self) -> Path:
        return self.run_dir / "synthetic"

    @property
    def notebooks_dir(self) -> Path:
        return self.run_dir / "notebooks"

    @property
    def figures_dir(self) -> Path:
        return self.run_dir / "figures"

    @property
    def tables_dir(self) -> Path:
        return self.run_dir / "tables"

    def figure_path(self, name: str) -> Path:
        """A figure's file, its folder made: for writing."""
        return _mkdir(self.figures_dir) / name

    def table_path(self, name: str) -> Path:
        """A table's file, its folder made: for writing (reading: `tables_dir / name`)."""
        return _mkdir(self.tables_dir) / name

    @property
    def gan(self) -> TrainingFolder:
        return TrainingFolder(self.run_dir / "gan")

    def seg(self, variant: str) -> TrainingFolder:
        return TrainingFolder(self.run_dir / f"seg-{variant}")

    def predictions_dir(self, variant: str, raw: bool = False) -> Path:
        return self.run_dir / "predictions" / f"{variant}{RAW_SUFFIX if raw else ''}"

    @property
    def metrics_dir(self) -> Path:
        return self.run_dir / "metrics"

    def scores_file(self, predictions: Path, protocol: str) -> Path:
        """The per-case scores of a predictions folder (`predictions_dir`) under `protocol`."""
        return self.metrics_dir / f"{predictions.name}_{protocol}.csv"

    def metrics_file(self, variant: str, protocol: str, raw: bool = False) -> Path:
        return self.scores_file(self.predictions_dir(variant, raw), protocol)

    def timing_dir(self, drop_empty_slices: bool) -> Path:
        """Where notebook 04 times one epoch with or without the empty slices."""
        return self.run_dir / "timing" / f"drop-{drop_empty_slices}"

    def your_code_dir(self, whose: str) -> Path:
        """Notebook 04's short training with a student's loss terms ("yours") or the kit's ("kit")."""
        return self.run_dir / "your-code" / whose

    @property
    def ablation_dir(self) -> Path:
        return self.run_dir / "ablation"

    def seed_dir(self, seed: int) -> Path:
        """The run folder of ablation seed `seed`: this one for 0."""
        return self.run_dir if seed == 0 else self.ablation_dir / f"seed{seed}"


@dataclass(frozen=True, kw_only=True)
class Run(RunLayout):
    """A run folder with its resolved config and data (`setup_run`, `open_run`)."""

    config: ExperimentConfig
    brats_dir: Path
    nfbs_dir: Path
    synthetic_brats: bool  # the BraTS-layout subjects were generated (no real BraTS data named)
    synthetic_normals: (
        bool  # the GAN's normals are generated NFBS-layout subjects (gan.normals: nfbs without real NFBS)
    )

    @property
    def synthetic(self) -> bool:
        """True when any data the run uses was generated."""
        return self.synthetic_brats or self.synthetic_normals

    @property
    def embedded_data(self) -> bool:
        """True when every data set the run uses is the kit's own synthetic data (the learning
        checks guard the kit there; see `checks`)."""
        return self.synthetic_brats and (self.config.gan.normals != "nfbs" or self.synthetic_normals)

    def data_kind(self) -> str:
        """What the segmentation and test subjects are: 'synthetic data' or 'real data'."""
        return "synthetic data" if self.synthetic_brats else "real data"

    @cached_property
    def cases(self) -> list[BratsCase]:
        """The BraTS-layout subjects, read as the config says (its modalities, its label convention)."""
        data = self.config.data
        return configure_cases(find_brats_cases(self.brats_dir), data.modalities, data.label_convention)

    @property
    def scheme(self) -> LabelScheme:
        """The label scheme the run trains and scores with (BraTS labels, or whole-tumour masks)."""
        return scheme_for(self.config.data.labels)

    @cached_property
    def normals(self) -> list[NfbsSubject]:
        """The NFBS-layout normal subjects (none with gan.normals: tumour-free-slices, which takes its
        normals from the training subjects)."""
        return find_nfbs_subjects(self.nfbs_dir) if self.config.gan.normals == "nfbs" else []

    @cached_property
    def split(self) -> dict[str, list[str]]:
        """Train/test subject ids; saved to split.json the first time (later runs read it back)."""
        path = self.split_file
        ids = [c.case_id for c in self.cases]
        if path.is_file():
            saved = json.loads(path.read_text())
            if sorted(saved["train"] + saved["test"]) == sorted(ids):
                return saved
        split = split_cases(ids, self.config.data.test_fraction, self.config.data.split_seed)
        atomic_write_text(path, json.dumps(split, indent=1))
        return split

    def describe(self) -> str:
        """One line saying which data this run uses, for every table and figure caption."""
        data, gan = self.config.data, self.config.gan
        brats = "synthetic data (generated, not BraTS)" if self.synthetic_brats else "real data"
        if gan.normals == "nfbs":
            made = "synthetic data (generated)" if self.synthetic_normals else "real data"
            normals = f"GAN normals: {made}, NFBS layout {self.nfbs_dir}"
        else:
            normals = (
                f"GAN normals: tumour-free slices of the training subjects (margin {gan.normal_margin}), "
                f"{brats.split(' (')[0]}"
            )
        return (
            f"profile '{self.config.profile}'; segmentation data: {brats}, BraTS layout {self.brats_dir} "
            f"({', '.join(data.modalities)}; "
            f"labels {data.label_convention}); {normals}"
        )


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


RUN_ENV = "GANET_RUN"  # a run folder for notebooks whose run_dir is empty (a class uses the teacher's)


def setup_run(
    profile: str = "", run_dir: str = "", brats_dir: str = "", nfbs_dir: str = "", progress: bool = True
) -> Run:
    """Resolve the config and the data of a run; generate synthetic data if no real data is named.

    Args:
        profile: profile name or YAML path; "" means $GANET_PROFILE, else "default".
        run_dir: the run folder; "" means $GANET_RUN, else `runs_root() / <profile>`. With no profile
            given (nor $GANET_PROFILE), a run folder that holds a config.json runs with its own
            settings: a teacher's run handed out reuses its checkpoints and caches.
        brats_dir, nfbs_dir: real data folders; "" falls back to $GANET_BRATS_DIR / $GANET_NFBS_DIR,
            then to the config, then to synthetic data.
    """
    overrides = {}
    run_dir = run_dir or os.environ.get(RUN_ENV, "")
    brats_dir = brats_dir or os.environ.get("GANET_BRATS_DIR", "")
    nfbs_dir = nfbs_dir or os.environ.get("GANET_NFBS_DIR", "")
    if brats_dir:
        overrides["brats_dir"] = str(brats_dir)
    if nfbs_dir:
        overrides["nfbs_dir"] = str(nfbs_dir)
    recorded = RunLayout(Path(run_dir)).config_file if run_dir else None
    if not (profile or os.environ.get("GANET_PROFILE")) and recorded is not None and recorded.is_file():
        # A run folder handed out (a teacher's): its own settings, so that its checkpoints and caches are reused.
        config = config_from_json(recorded.read_text(), str(recorded))
        if overrides:
            config = replace(config, data=replace(config.data, **overrides))
        print(f"settings of the run folder {run_dir} (its config.json, profile '{config.profile}')")
    else:
        config = load_config(profile, {"data": overrides} if overrides else None)
    if config.gan.normals not in ("nfbs", "tumour-free-slices"):
        raise KitInputError(f"gan.normals is '{config.gan.normals}'; use nfbs or tumour-free-slices.")
    folder = Path(run_dir) if run_dir else runs_root() / config.profile
    folder.mkdir(parents=True, exist_ok=True)

    data = config.data
    # Generate only what the run uses and has no real data for: BraTS-layout subjects without
    # brats_dir; NFBS-layout normals without nfbs_dir, and only when the GAN learns from NFBS.
    need_brats, need_normals = synthetic_needs(config)
    if need_brats or need_normals:
        spec = SynthSpec(
            cases=data.synthetic_cases if need_brats else 0,
            normals=data.synthetic_normals if need_normals else 0,
            shape=tuple(data.synthetic_shape),
            seed=data.synthetic_seed,
        )
        target = RunLayout(folder).synthetic_dir
        if read_spec(target) not in (None, spec):  # the profile's synthetic settings changed: regenerate
            print(f"synthetic data in {target} was made with other settings; regenerating it")
            shutil.rmtree(target)
        write_synthetic_dataset(target, spec, progress=progress)
    config = resolve_data(config, run_in_folder(config, folder).brats_dir, RunLayout(folder).labels_file, progress)
    atomic_write_text(RunLayout(folder).config_file, config.to_json())
    return run_in_folder(config, folder)


def resolve_data(
    config: ExperimentConfig, brats_dir: Path, survey_file: Path, progress: bool = True
) -> ExperimentConfig:
    """The config with data.modalities in channel order and data.labels / data.label_convention
    as found in the label maps (`data.survey_cases`); says once how the labels were read."""
    data = config.data
    fresh = not survey_file.is_file()
    survey = survey_cases(
        find_brats_cases(brats_dir),
        data.labels,
        convention=data.label_convention,
        cache_file=survey_file,
        progress=progress,
    )
    if fresh:
        print(f"label maps: {survey.reason}")
    return replace(
        config,
        data=replace(
            data,
            modalities=chosen_modalities(data.modalities),
            labels=survey.scheme.name,
            label_convention=survey.convention,
        ),
    )


def open_run(run_dir: Path | str) -> Run:
    """The run in an existing run folder (made by `setup_run`: notebooks or `ganet` commands).

    Raises:
        KitInputError: the folder has no config.json.
    """
    folder = Path(run_dir)
    path = RunLayout(folder).config_file
    if not path.is_file():
        raise KitInputError(
            f"'{folder}' is not a run folder (no config.json); pass the folder given to `ganet pretrain-gan --run` or "
            "run_all.sh's runs/<profile>."
        )
    return run_in_folder(config_from_json(path.read_text(), source=str(path)), folder)


def synthetic_needs(config: ExperimentConfig) -> tuple[bool, bool]:
    """(BraTS-layout subjects, NFBS-layout normals): which synthetic data sets the run uses."""
    data = config.data
    return data.brats_dir is None, data.nfbs_dir is None and config.gan.normals == "nfbs"


def run_in_folder(config: ExperimentConfig, folder: Path) -> Run:
    """The Run of a resolved config in `folder`: real data where the config names it, else the
    synthetic data generated into the folder."""
    data = config.data
    need_brats, need_normals = synthetic_needs(config)
    return Run(
        config=config,
        run_dir=folder,
        brats_dir=Path(data.brats_dir) if data.brats_dir else RunLayout(folder).synthetic_dir / "brats",
        nfbs_dir=Path(data.nfbs_dir) if data.nfbs_dir else RunLayout(folder).synthetic_dir / "nfbs",
        synthetic_brats=need_brats,
        synthetic_normals=need_normals,
    )
