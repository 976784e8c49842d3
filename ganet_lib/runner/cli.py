"""`ganet`: the kit's command line (SPEC section 7).

Exit status 0 on success, 2 on bad input or usage (one sentence per problem, naming the file),
1 on an internal error (a bug: the traceback is shown).

Each command imports what it needs when it runs, so that `ganet --help` and the light commands
(synth, validate, evaluate) start without importing torch. This is the one module that imports
the library inside functions; nothing imports it (`tests/test_layout.py` checks both).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ganet_lib.errors import KitInputError


def cmd_synth(args: argparse.Namespace) -> int:
    from ganet_lib.data.synthetic import SynthSpec, write_synthetic_dataset

    spec = SynthSpec(
        cases=args.cases,
        normals=args.normals,
        shape=tuple(args.shape),
        seed=args.seed,
        compress=args.format == "nii.gz",
    )
    forms = (args.modalities, args.labels, args.intensity) != ("", "brats2017", "int16")
    if not forms:
        out = write_synthetic_dataset(args.out, spec)
        print(
            f"synthetic data ({spec.cases} BraTS-layout subjects, {spec.normals} NFBS-layout subjects, shape "
            f"{spec.shape}, seed {spec.seed}) in {out}"
        )
        return 0
    import shutil

    from ganet_lib.data.cases import MODALITIES
    from ganet_lib.data.forms import rewrite_brats
    from ganet_lib.files import atomic_folder

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise KitInputError(f"'{out}' already exists and is not empty; remove it or choose another output folder.")
    modalities = tuple(args.modalities.split(",")) if args.modalities else MODALITIES
    with atomic_folder(out) as data:  # renamed into place when complete
        source = write_synthetic_dataset(data / "source", spec)  # the kit's own form, rewritten below
        rewrite_brats(
            source / "brats", data / "brats", modalities=modalities, labels=args.labels, intensity=args.intensity
        )
        if (source / "nfbs").is_dir():  # none with --normals 0
            shutil.move(source / "nfbs", data / "nfbs")
        shutil.rmtree(source)
    print(
        f"synthetic data ({spec.cases} BraTS-layout subjects written as {', '.join(modalities)}, labels "
        f"{args.labels}, intensities {args.intensity}; "
        f"{spec.normals} NFBS-layout subjects; shape {spec.shape}, seed {spec.seed}) in {out}"
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ganet_lib.data.cases import MODALITIES
    from ganet_lib.data.validate import validate_dataset

    modalities = tuple(args.modalities.split(",")) if args.modalities else MODALITIES
    report = validate_dataset(
        args.brats,
        args.nfbs,
        require_labels=not args.no_labels,
        modalities=modalities,
        labels=args.labels,
        label_convention=args.label_convention,
    )
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report.labels:
        print(f"label maps: {report.labels}")
    if report.intensities:
        print(f"intensities: {'; '.join(report.intensities)}")
    for problem in report.problems:
        print(f"error: {problem}", file=sys.stderr)
    checked = []
    if args.brats is not None:
        checked.append(f"{report.brats_cases} BraTS subject(s) in {args.brats}")
    if args.nfbs is not None:
        checked.append(f"{report.nfbs_subjects} NFBS subject(s) in {args.nfbs}")
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    print(f"checked {' and '.join(checked)}: {verdict}")
    return 0 if report.ok else 2


def cmd_preprocess(args: argparse.Namespace) -> int:
    from ganet_lib.method.preprocess import SliceCache, build_slice_cache
    from ganet_lib.run import setup_run

    run = setup_run(args.config, args.run or "", brats_dir=args.brats or "")
    folder = build_slice_cache(run.cases, run.cache_dir, run.config.preprocess)
    cache = SliceCache(folder)
    print(f"slice cache: {len(cache)} slices from {len(cache.cases)} subjects in {folder} ({run.describe()})")
    return 0


def cmd_pretrain_gan(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from ganet_lib.method.train_gan import pretrain_gan_for_run
    from ganet_lib.run import setup_run

    run = setup_run(args.config, args.run or "", nfbs_dir=args.nfbs or "")
    result = pretrain_gan_for_run(run, resume=args.resume, cpu=args.cpu)
    if result.history and PartialState().is_main_process:  # one summary under `accelerate launch`
        best = min(row["val_hole_l1"] for row in result.history)
        print(
            f"GAN pre-training: {len(result.history)} epoch(s), best validation hole L1 {best:.4f}; checkpoints "
            f"{result.best_checkpoint}, {result.last_checkpoint}"
        )
    return 0


def cmd_train_seg(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from ganet_lib.evaluation.predict import choose_postprocessing
    from ganet_lib.method.train_seg import train_segmentation_for_run
    from ganet_lib.run import setup_run

    run = setup_run(args.config, args.run or "", brats_dir=args.brats or "")
    result = train_segmentation_for_run(run, args.variant, resume=args.resume, cpu=args.cpu)
    choose_postprocessing(run, args.variant)  # on the validation subjects, for the best checkpoint (main process only)
    if result.history and PartialState().is_main_process:
        best = max(result.history, key=lambda row: row["val_dice_mean"])
        regions = " ".join(f"{region} {best[f'val_dice_{region}']:.3f}" for region in run.scheme.regions)
        print(
            f"{args.variant}: {len(result.history)} epoch(s); best validation Dice {regions} "
            f"(epoch {best['epoch']}); checkpoints {result.best_checkpoint}, {result.last_checkpoint}"
        )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ganet_lib.evaluation.predict import predict_folder

    written = predict_folder(
        args.checkpoint, args.input, out_dir=args.out, postprocess=not args.no_postprocess, numbering=args.numbering
    )
    print(f"wrote {len(written)} label map(s) to {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import os
    import warnings

    from ganet_lib.evaluation.evaluate import evaluate_folder, format_means, write_rows

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        workers = args.workers or min(os.cpu_count() or 1, 8)
        rows = evaluate_folder(
            args.pred,
            args.gt,
            protocol=args.protocol,
            labels=args.labels,
            label_convention=args.label_convention,
            workers=workers,
            pred_convention=args.pred_convention,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    write_rows(args.out, rows)
    print(format_means(rows, args.protocol))
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import numpy as np

    from ganet_lib.run import open_run
    from ganet_lib.runner.report import markdown_table
    from ganet_lib.studies.detector import detectors_for_run, format_table, save_sweep, sweep_for_run, sweep_roc
    from ganet_lib.studies.position import detector_summary

    run = open_run(args.run)
    checkpoint = args.checkpoint or run.gan.best
    rows = sweep_for_run(run, checkpoint)
    table = save_sweep(run, rows, tuple(args.thresholds))
    scores, positive = np.array([r["score"] for r in rows]), np.array([r["positive"] for r in rows])
    print(
        f"Table 1 ({run.describe()}; discriminator {checkpoint}; {len(rows)} slices of {len(run.split['test'])} test "
        f"subject(s), {int(positive.sum())} with tumour)"
    )
    print(format_table(table))
    if positive.any() and not positive.all():
        print(f"ROC AUC of 'mean D map <= threshold = tumour': {sweep_roc(scores, positive)['auc']:.3f}")
        print(
            "the discriminator beside the baselines and slice position (full size unless said; 95 % intervals over "
            "test subjects):"
        )
        print(markdown_table(*detector_summary(detectors_for_run(run, rows, checkpoint, progress=False))))
    print(
        f"wrote {run.table_path('table1_sweep.csv')}, {run.table_path('sweep_slices.csv')} and "
        f"{run.table_path('detectors_auc.csv')}"
    )
    return 0


def cmd_student_edition(args: argparse.Namespace) -> int:
    from ganet_lib.config import REPO_ROOT
    from ganet_lib.teaching.student import write_student_edition

    source = args.notebooks or REPO_ROOT / "notebooks"
    if not source.is_dir():
        raise KitInputError(
            f"There is no notebook folder '{source}'; pass --notebooks DIR (the kit's notebooks/, the solution source)."
        )
    written = write_student_edition(source, args.out, force=args.force, update=args.update)
    count = sum(len(keys) for keys in written.values())
    print(f"student edition of {len(written)} notebooks with {count} exercises in {args.out}:")
    for name, keys in written.items():
        print(f"  {name}: {', '.join(keys) or 'no exercise'}")
    print(
        "Open it in JupyterLab (kernel 'Python (ganet-kit)'); every check reports 'not attempted yet' until its "
        "function is written."
    )
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from ganet_lib.teaching.book import write_book

    index = write_book(args.run, args.out, student=args.student)
    edition = "student edition" if args.student else "teacher's edition"
    print(f"book of {args.run} ({edition}): {index} (open it in a browser; it needs no network)")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    import os

    from tqdm import tqdm

    from ganet_lib.teaching.grade import (
        GraderUnavailable,
        broken_everywhere,
        exercise_points,
        find_isolation,
        grade_class,
        load_secret,
        preflight,
        student_folders,
    )

    if not args.submissions.is_dir():
        raise KitInputError(
            f"There is no folder '{args.submissions}'; give the folder that holds one folder per student."
        )
    students = student_folders(args.submissions)
    if not students:
        raise KitInputError(
            f"'{args.submissions}' holds no student folder; put each student's notebooks in a folder of their own "
            "(SUBMISSIONS/<student>/04_segmentation.ipynb, ...)."
        )
    try:
        isolation = find_isolation(args.isolation)
        print(f"isolation: {isolation.description}", file=sys.stderr if isolation.name == "unconfined" else sys.stdout)
        seconds = preflight(isolation)
    except GraderUnavailable as exc:
        raise KitInputError(f"Cannot grade: {exc}.") from None
    print(f"start-up check: known answers graded 'passed' inside the sandbox ({seconds:.1f} s)")
    secret, secret_file = load_secret(args.secret, args.out)
    points = exercise_points()
    feedback = args.feedback or args.out.parent / "feedback"
    workers = args.workers or min(len(students), os.cpu_count() or 1, 8)
    print(
        f"grading {len(students)} students x {len(points)} exercises ({workers} at a time; {args.timeout} s and "
        f"{args.memory} MiB per exercise); hidden inputs from the secret in {secret_file} (keep it; never hand it out)"
    )
    started = time.monotonic()
    with tqdm(total=len(students), desc="grade", unit="student") as bar:
        grades = grade_class(
            args.submissions,
            args.out,
            feedback_dir=feedback,
            exercise_points=points,
            isolation=isolation,
            secret=secret,
            timeout=args.timeout,
            memory_mb=args.memory,
            workers=workers,
            progress=bar,
        )
    counts: dict[str, int] = {}
    for grade in grades:
        counts[grade.outcome] = counts.get(grade.outcome, 0) + 1
    elapsed = time.monotonic() - started
    print(
        f"graded in {elapsed:.1f} s ({elapsed / len(students):.1f} s per student): "
        + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    )
    print(f"grades: {args.out}; feedback per student: {feedback}/")
    if broken_everywhere(grades):
        first = next(g.message for g in grades if g.outcome == "error")
        print(
            f"error: every exercise of every student ended in 'error', so the grader, not the class, is broken here "
            f"(the first: {first[:300]}); fix that and grade again.",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_ablation(args: argparse.Namespace) -> int:
    from ganet_lib.run import setup_run
    from ganet_lib.runner.report import markdown_table, write_report
    from ganet_lib.studies.ablation import run_ablation, seed_scores, sentence, summary_table
    from ganet_lib.viz import plot_ablation, save_figure

    if args.seeds < 1:
        raise KitInputError(f"--seeds must be at least 1 (got {args.seeds}).")
    run = setup_run(args.config, args.run or "", brats_dir=args.brats or "")
    summary = run_ablation(run, args.seeds)
    save_figure(plot_ablation(seed_scores(run, list(range(args.seeds))), summary), run.figure_path("06_ablation.png"))
    print(markdown_table(*summary_table(summary)))
    print(sentence(summary))
    print(
        f"wrote {run.table_path('ablation_summary.csv')}, {run.table_path('ablation_seeds.csv')}, "
        f"{run.figure_path('06_ablation.png')}; report {write_report(run.run_dir)}"
    )
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from ganet_lib.runner.results import write_results

    print(f"wrote {write_results(args.run, args.out)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ganet_lib.runner.report import write_report

    print(f"wrote {write_report(args.run)}")
    return 0


def _run_arguments(command: argparse.ArgumentParser, data_flag: str, data_help: str, training: str = "") -> None:
    """The options of every command that works in a run folder (and, for training, --resume / --cpu)."""
    command.add_argument("--config", default="", help="profile name (smoke, default, paper) or YAML file")
    command.add_argument("--run", default="", help="run folder (default runs/<profile>)")
    command.add_argument(data_flag, default="", help=data_help)
    if training:
        command.add_argument(
            "--resume", action="store_true", help=f"continue from {training} when its settings are unchanged"
        )
        command.add_argument("--cpu", action="store_true", help="stay on the CPU even if a GPU is visible")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganet", description="GANet-Seg teaching and reproduction kit.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="write synthetic data in the BraTS 2020 and NFBS layouts")
    synth.add_argument("--out", type=Path, required=True, help="output folder (DIR/brats/..., DIR/nfbs/...)")
    synth.add_argument("--cases", type=int, default=24, help="BraTS-layout subjects (default 24)")
    synth.add_argument("--normals", type=int, default=8, help="NFBS-layout normal subjects (default 8)")
    synth.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=[96, 96, 64],
        metavar=("X", "Y", "Z"),
        help="volume shape (real BraTS: 240 240 155)",
    )
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--format", choices=["nii.gz", "nii"], default="nii.gz", help="file format (default nii.gz)")
    synth.add_argument(
        "--modalities", default="", help="write only these modalities, comma-separated (default: t1,t1ce,t2,flair)"
    )
    synth.add_argument(
        "--labels",
        choices=["brats2017", "brats2012", "brats2023", "brats2024", "whole-tumour"],
        default="brats2017",
        help="label numbering: BraTS 2017-2021 (default), 2012-2016 (NET = 3), 2023+ (ET = 3, 2023 file names), "
        "2024+ post-treatment (as 2023, every other subject with a resection cavity, 4) or whole-tumour masks",
    )
    synth.add_argument(
        "--intensity",
        choices=["int16", "float32", "zscore", "zscore-mask"],
        default="int16",
        help="int16 (default), raw float32, z-scored with a non-zero background, or z-scored with a *_brainmask file",
    )
    synth.set_defaults(handler=cmd_synth)

    validate = commands.add_parser("validate", help="check a data set: files, shapes, affines, intensities, labels")
    validate.add_argument("--brats", type=Path, help="BraTS root (any supported layout)")
    validate.add_argument("--nfbs", type=Path, help="NFBS root (nested or flat)")
    validate.add_argument("--no-labels", action="store_true", help="label maps are optional (prediction input)")
    validate.add_argument(
        "--modalities",
        default="",
        help="comma-separated modalities to check (data.modalities; default t1,t1ce,t2,flair)",
    )
    validate.add_argument(
        "--labels",
        choices=["auto", "brats", "whole-tumour"],
        default="auto",
        help="what the label maps hold (default: found in the files)",
    )
    validate.add_argument(
        "--label-convention",
        choices=["auto", "brats2012", "brats2017", "brats2023", "brats2024"],
        default="auto",
        help="how BraTS label maps are numbered (default: found in the files)",
    )
    validate.set_defaults(handler=cmd_validate)

    preprocess = commands.add_parser("preprocess", help="build the slice cache for a run (done by training too)")
    _run_arguments(preprocess, "--brats", "BraTS root; overrides the config (none: synthetic data)")
    preprocess.set_defaults(handler=cmd_preprocess)

    gan = commands.add_parser("pretrain-gan", help="pre-train the inpainting GAN on normal brains (notebook 03)")
    _run_arguments(
        gan, "--nfbs", "NFBS root; overrides the config (none: synthetic normals)", training="RUN/gan/last.pt"
    )
    gan.set_defaults(handler=cmd_pretrain_gan)

    seg = commands.add_parser(
        "train-seg", help="train the segmentation U-Net, with (ganet) or without (unet) the adversarial feedback"
    )
    _run_arguments(
        seg, "--brats", "BraTS root; overrides the config (none: synthetic data)", training="RUN/seg-<variant>/last.pt"
    )
    seg.add_argument(
        "--variant", choices=["ganet", "unet"], default="ganet", help="ganet needs RUN/gan/best.pt (pretrain-gan)"
    )
    seg.set_defaults(handler=cmd_train_seg)

    predict = commands.add_parser("predict", help="segment BraTS-layout cases into <case>.nii.gz label maps")
    predict.add_argument(
        "--checkpoint", type=Path, required=True, help="a train-seg checkpoint (RUN/seg-<variant>/best.pt)"
    )
    predict.add_argument(
        "--input", type=Path, required=True, help="one case folder or a data set root (any supported BraTS layout)"
    )
    predict.add_argument(
        "--out", type=Path, required=True, help="output folder: OUT/<case>.nii.gz, in each case's own label numbering"
    )
    predict.add_argument(
        "--numbering",
        choices=["auto", "brats2012", "brats2017", "brats2023", "brats2024"],
        default="auto",
        help="label numbering of the files (default auto: the case's own; 2023 names 0/1/2/3, older 0/1/2/4, "
        "4 = cavity for 2024+ models)",
    )
    predict.add_argument(
        "--no-postprocess",
        action="store_true",
        help="write the raw arg-max instead of applying the post-processing recorded beside the checkpoint "
        "(postprocess.json)",
    )
    predict.set_defaults(handler=cmd_predict)

    evaluate = commands.add_parser(
        "evaluate", help="score predictions against BraTS label maps (per case and region, CSV)"
    )
    evaluate.add_argument(
        "--pred", type=Path, required=True, help="folder of <case>.nii.gz predictions, numbered as the truth"
    )
    evaluate.add_argument(
        "--gt", type=Path, required=True, help="truth: any supported BraTS layout; only the *_seg files are needed"
    )
    evaluate.add_argument(
        "--protocol",
        choices=["brats", "brats-panoptica", "paper-slicewise"],
        default="brats",
        help="brats: 3D BraTS 2023 lesion-wise evaluation (default); brats-panoptica: the official BraTS 2025+ "
        "evaluation (brats-evaluation's columns, one row per subject, then mean, std, median); paper-slicewise: "
        "the authors' 2D computation",
    )
    evaluate.add_argument(
        "--out",
        type=Path,
        required=True,
        help="CSV: subject,region,dice,hd95,lw_dice,lw_hd95,tp,fn,fp (brats-panoptica: the official CSV's columns)",
    )
    evaluate.add_argument(
        "--labels",
        choices=["auto", "brats", "whole-tumour"],
        default="auto",
        help="what the truth's label maps hold (default: found in the files)",
    )
    evaluate.add_argument(
        "--label-convention",
        choices=["auto", "brats2012", "brats2017", "brats2023", "brats2024"],
        default="auto",
        help="how the truth's BraTS label maps are numbered (default: found in the files)",
    )
    evaluate.add_argument(
        "--pred-convention",
        choices=["auto", "brats2012", "brats2017", "brats2023", "brats2024"],
        default="auto",
        help="how the predictions are numbered (default: as the truth, which is how ganet predict writes them)",
    )
    evaluate.add_argument(
        "--workers", type=int, default=0, help="processes scoring cases in parallel (default 0: one per CPU, at most 8)"
    )
    evaluate.set_defaults(handler=cmd_evaluate)

    student = commands.add_parser(
        "student-edition", help="write the student edition of the notebooks: exercises as stubs with checks, no outputs"
    )
    student.add_argument("--out", type=Path, required=True, help="output folder (new, or an earlier student edition)")
    student.add_argument("--notebooks", type=Path, help="the solution notebooks (default: the checkout's notebooks/)")
    keep = student.add_mutually_exclusive_group()
    keep.add_argument(
        "--update", action="store_true", help="keep the exercise cells of notebooks a student changed; the rest is new"
    )
    keep.add_argument("--force", action="store_true", help="overwrite notebooks a student changed")
    student.set_defaults(handler=cmd_student_edition)

    book = commands.add_parser("book", help="render a run's executed notebooks as static HTML pages with an index")
    book.add_argument(
        "--run", type=Path, required=True, help="a run folder that ./run_all.sh executed (runs/<profile>)"
    )
    book.add_argument("--out", type=Path, required=True, help="output folder: index.html and one page per notebook")
    book.add_argument(
        "--student", action="store_true", help="the student edition: solutions as stubs, hidden tests removed"
    )
    book.set_defaults(handler=cmd_book)

    grade = commands.add_parser(
        "grade", help="grade a class: each student's exercises run confined, checked on hidden cases"
    )
    grade.add_argument("submissions", type=Path, help="a folder with one folder per student, holding their notebooks")
    grade.add_argument(
        "--out", type=Path, required=True, help="the grades, a CSV file (one row per student and exercise)"
    )
    grade.add_argument("--feedback", type=Path, help="one feedback file per student (default: feedback/ beside --out)")
    grade.add_argument("--timeout", type=int, default=60, help="seconds per exercise (default 60)")
    grade.add_argument("--memory", type=int, default=4096, help="MiB of address space per exercise (default 4096)")
    grade.add_argument(
        "--secret",
        type=Path,
        help="the file of an earlier run's secret, to draw the same hidden inputs again (default: a new secret, "
        "kept in OUT with the suffix .secret)",
    )
    grade.add_argument(
        "--workers", type=int, default=0, help="students graded at once (default: one per CPU, at most 8)"
    )
    grade.add_argument(
        "--isolation",
        choices=["auto", "bubblewrap", "unconfined", "unshare", "none"],
        default="auto",
        help="how student code is confined: bubblewrap (auto: required); 'unconfined' runs it with your rights, "
        "for code you trust ('unshare' and 'none' are refused: they do not confine the file system)",
    )
    grade.set_defaults(handler=cmd_grade)

    sweep = commands.add_parser(
        "sweep", help="Table 1: the discriminator's tumour-slice detection at several thresholds"
    )
    sweep.add_argument(
        "--run", type=Path, required=True, help="run folder with gan/best.pt (pretrain-gan, notebook 03)"
    )
    sweep.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4], help="mean D map <= threshold means tumour"
    )
    sweep.add_argument("--checkpoint", type=Path, help="GAN checkpoint (default RUN/gan/best.pt)")
    sweep.set_defaults(handler=cmd_sweep)

    ablation = commands.add_parser(
        "ablation", help="both variants trained with several seeds; mean +- sd, paired difference, 95 %% CI, verdict"
    )
    _run_arguments(ablation, "--brats", "BraTS root; overrides the config (none: synthetic data)")
    ablation.add_argument(
        "--seeds",
        type=int,
        default=5,
        help="seeds 0..N-1; seed 0 is the run itself, seed k > 0 goes to RUN/ablation/seed<k> (default 5)",
    )
    ablation.set_defaults(handler=cmd_ablation)

    results = commands.add_parser(
        "results",
        help="write a run's measured figures, with date, commit and machine, to a markdown file (the README's)",
    )
    results.add_argument("--run", type=Path, required=True, help="run folder (run_all.sh's runs/<profile>)")
    results.add_argument("--out", type=Path, required=True, help="markdown file to write, e.g. docs/results-default.md")
    results.set_defaults(handler=cmd_results)

    report = commands.add_parser(
        "report", help="write RUN/report.md from a run folder's tables and figures (run_all.sh does this)"
    )
    report.add_argument("--run", type=Path, required=True, help="run folder")
    report.set_defaults(handler=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "validate" and args.brats is None and args.nfbs is None:
        parser.error("validate needs --brats DIR, --nfbs DIR or both")
    try:
        return args.handler(args)
    except KitInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        _end_distributed()


def _end_distributed() -> None:
    """Under `accelerate launch` / torchrun, take the process group down before Python exits: left to
    interpreter shutdown, gloo's worker threads can abort the process ("terminate called without an
    active exception", seen here with 2 CPU processes; pytorch/pytorch#190489)."""
    torch = sys.modules.get("torch")  # a command that never imported torch has no process group
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
