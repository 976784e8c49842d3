"""`ganet evaluate`: prediction files against BraTS label maps, per case and region (SPEC section 7).

Predictions are `<case>.nii.gz` (or `.nii`) label maps numbered as the truth is (`ganet predict`
writes them so: 0/1/2/4 for 2017-2021 truth, 0/1/2/3 for 2023, 0-4 with 4 the resection cavity for
2024+), or in the numbering `--pred-convention` names; a value that numbering does not use is
refused, never guessed. For whole-tumour truth any non-zero value is tumour (only WT is scored).
One prediction per truth case. A case without a prediction is scored as an empty
prediction, with a warning. Two protocols (see `metrics`): `brats` (the one to trust) and
`paper-slicewise` (the authors' 2D computation, to show where the paper's row comes from).
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
from tqdm.auto import tqdm

from ganet_lib.data.cases import BratsCase, find_brats_cases, load_label, read_volume, survey_cases, voxel_spacing
from ganet_lib.data.labels import (
    BRATS,
    CONVENTIONS,
    KIT,
    LabelScheme,
    distinct_values,
    file_values,
    renumber,
    scheme_of,
    stored_labels,
)
from ganet_lib.errors import KitInputError
from ganet_lib.evaluation import paper
from ganet_lib.evaluation.metrics import PAPER_COLUMNS, brats_scores, paper_slicewise_scores
from ganet_lib.evaluation.panoptica import brats_panoptica_scores, panoptica_table
from ganet_lib.evaluation.postprocess import read_record, rule_of
from ganet_lib.files import atomic_write_csv
from ganet_lib.run import RAW_SUFFIX, Run

PANOPTICA = "brats-panoptica"  # the official BraTS evaluation from 2025 on (`panoptica`)
PROTOCOLS = ("brats", PANOPTICA, "paper-slicewise")
PANOPTICA_GROUPS = {"WT": "wt", "TC": "tc", "ET": "et", "RC": "rc"}  # the kit's regions -> the official groups
COLUMNS = ("subject", "region", "dice", "hd95", "lw_dice", "lw_hd95", "tp", "fn", "fp")
REGION_ORDER = ("WT", "TC", "ET", "RC")


def protocols_for(scheme: LabelScheme) -> tuple[str, ...]:
    """The protocols that apply to a scheme's label maps (whole-tumour masks have no sub-regions to
    match, so no brats-panoptica)."""
    return tuple(p for p in PROTOCOLS if p != PANOPTICA or scheme.name != "whole-tumour")


def postprocess_description(checkpoint: Path) -> str:
    """What the post-processing recorded beside `checkpoint` does ("none" when none is recorded)."""
    if not checkpoint.is_file():
        return "none recorded"
    rule = rule_of(read_record(checkpoint))
    return "none chosen" if rule.is_identity else rule.describe()


def prediction_path(pred_dir: Path, case_id: str) -> Path | None:
    """`pred_dir/<case>.nii.gz`, else `<case>.nii`, else None."""
    for suffix in (".nii.gz", ".nii"):
        path = pred_dir / f"{case_id}{suffix}"
        if path.is_file():
            return path
    return None


def read_prediction(
    path: Path, case: BratsCase, truth_shape: tuple[int, ...], convention: str | None = None, raw: bool = False
) -> np.ndarray:
    """A prediction file in the kit's labels, checked against its case. Its values are read in the
    numbering of the truth (`case.label_convention`), as `ganet predict` writes them, or in
    `convention` when given; a value that numbering does not use is refused, never guessed.
    `raw`: the checked values as stored (uint8), not converted to the kit's numbering."""
    try:
        image = nib.load(path)
        labels = np.asarray(image.dataobj)
    except Exception as exc:
        raise KitInputError(
            f"'{path}' cannot be read as NIfTI ({type(exc).__name__}: {exc}); write the prediction again."
        ) from exc
    if labels.shape != truth_shape:
        raise KitInputError(
            f"The prediction '{path}' has shape {labels.shape} but the truth '{case.label}' has {truth_shape}; "
            "predictions must be on the truth's voxel grid."
        )
    convention = convention or case.label_convention
    try:
        stored = stored_labels(labels, convention, f"'{path}'")
    except KitInputError:  # the sentence for a prediction: what its numbering is taken to be, and the options
        found = {int(v) for v in distinct_values(np.rint(labels) if labels.dtype.kind == "f" else labels)}
        unexpected = sorted(found - set(file_values(convention)))
        hint = ""
        if convention == "brats2023" and 4 in found and 3 not in found:
            hint = (
                " A 4 without any 3 is enhancing tumour in the 2017-2021 numbering (which kit versions before "
                "December 2026 wrote for every case) or the resection cavity in 2024+ data;"
            )
        raise KitInputError(
            f"The prediction '{path}' holds label(s) {unexpected}, which the truth's "
            f"{CONVENTIONS[convention]} does not use.{hint} Write it in the truth's numbering (`ganet predict` does), "
            "or say its numbering with --pred-convention."
        ) from None
    return stored if raw else renumber(stored, convention, KIT)


def evaluate_case(
    prediction: np.ndarray,
    truth: np.ndarray,
    spacing: tuple[float, float, float],
    protocol: str,
    scheme: LabelScheme = BRATS,
) -> list[dict]:
    """Rows (without the subject) for one case: one per region of `scheme`, columns of COLUMNS.

    For `paper-slicewise` the regions are the authors' columns (WT = label 1, TC = label 4,
    ET = label 2; whole-tumour masks: WT = the tumour, label 1); lw_hd95 and the lesion counts do
    not exist in that protocol and are left empty.
    """
    regions = [r for r in REGION_ORDER if r in scheme.regions]
    if protocol == "brats":
        scores = brats_scores(prediction, truth, spacing, scheme.regions)
        return [
            {
                "region": region,
                "dice": s.dice,
                "hd95": s.hd95,
                "lw_dice": s.lw_dice,
                "lw_hd95": s.lw_hd95,
                "tp": s.tp,
                "fn": s.fn,
                "fp": s.fp,
            }
            for region, s in ((r, scores[r]) for r in regions)
        ]
    if protocol == "paper-slicewise":
        regions = [r for r in regions if r in PAPER_COLUMNS]  # the paper has no resection cavity
        scores = paper_slicewise_scores(prediction, truth, {r: PAPER_COLUMNS[r] for r in regions})
        return [
            {"region": region, **scores[region], "lw_hd95": None, "tp": None, "fn": None, "fp": None}
            for region in regions
        ]
    raise KitInputError(f"Unknown protocol '{protocol}'; choose one of {', '.join(PROTOCOLS)}.")


def score_case(
    case: BratsCase, pred_dir: Path, protocol: str, pred_convention: str | None = None
) -> tuple[list[dict], str | None]:
    """Rows of one case (`evaluate_case`, with the subject), and a warning when it has no prediction."""
    path = prediction_path(pred_dir, case.case_id)
    spacing = voxel_spacing(case.label)
    if protocol == PANOPTICA:  # one row per subject, the official's; a missing prediction gets the official's row
        if path is None:
            return [{"subject_id": case.label.name, "missing": True}], (
                f"no prediction for {case.case_id} in '{pred_dir}'; scoring it as missing (the official's row)"
            )
        return [
            {
                "subject_id": case.label.name,  # as brats-evaluate names a subject: its reference's file name
                **brats_panoptica_scores(*_in_2024_numbering(case, path, pred_convention), spacing),
            }
        ], None
    truth = load_label(case)
    warning = None
    if path is None:
        warning = f"no prediction for {case.case_id} in '{pred_dir}'; scoring it as an empty prediction"
        prediction = np.zeros_like(truth)
    else:
        prediction = read_prediction(path, case, truth_shape=truth.shape, convention=pred_convention)
    scheme = scheme_of(case.label_convention)
    return [
        {"subject": case.case_id, **row}
        for row in evaluate_case(prediction, truth, spacing=spacing, protocol=protocol, scheme=scheme)
    ], warning


def _in_2024_numbering(case: BratsCase, path: Path, pred_convention: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, truth) numbered as BraTS 2024+ (1 NETC, 2 SNFH, 3 ET, 4 RC), as the official
    evaluation reads them; files already numbered so (2023, 2024) are used as they are (`renumber`)."""
    truth = stored_labels(read_volume(case.label, dtype=None)[0], case.label_convention, f"'{case.label}'")
    prediction = read_prediction(path, case, truth_shape=truth.shape, convention=pred_convention, raw=True)
    return (
        renumber(prediction, pred_convention or case.label_convention, "brats2024"),
        renumber(truth, case.label_convention, "brats2024"),
    )


def _score_case_job(job: tuple) -> tuple[list[dict], str | None]:
    return score_case(*job)


def evaluate_cases(
    pred_dir: Path | str,
    cases: list[BratsCase],
    protocol: str = "brats",
    progress: bool = True,
    workers: int = 1,
    pred_convention: str | None = None,
) -> list[dict]:
    """Score `pred_dir/<case>.nii.gz` against each case's label map; one row per case and region.

    Args:
        workers: processes scoring cases in parallel (1: in this process). The rows come back in
            the order of `cases` whatever the number.
        pred_convention: the predictions' label numbering (None: the truth's, as `ganet predict` writes).
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise KitInputError(
            f"The prediction folder '{pred_dir}' does not exist; run `ganet predict --out {pred_dir}` first."
        )
    if protocol not in PROTOCOLS:
        raise KitInputError(f"Unknown protocol '{protocol}'; choose one of {', '.join(PROTOCOLS)}.")
    if workers < 1:
        raise KitInputError(f"--workers is {workers}; give 1 or more processes.")
    if pred_convention is not None and pred_convention not in CONVENTIONS:
        raise KitInputError(f"--pred-convention is '{pred_convention}'; use auto or one of {', '.join(CONVENTIONS)}.")
    if protocol == PANOPTICA and any(case.label_convention == "whole-tumour" for case in cases):
        raise KitInputError(
            "The brats-panoptica protocol scores the BraTS sub-regions, which whole-tumour masks do not have; use "
            "--protocol brats."
        )
    jobs = [(case, pred_dir, protocol, pred_convention) for case in cases]
    bar = dict(desc=f"evaluate ({protocol})", unit="case", disable=not progress, total=len(jobs))
    if workers == 1 or len(jobs) < 2:
        results = [_score_case_job(job) for job in tqdm(jobs, **bar)]
    else:
        results = list(tqdm(parallel_map(_score_case_job, jobs, workers), **bar))
    rows = []
    for case_rows, warning in results:
        if warning:
            warnings.warn(warning, stacklevel=2)
        rows += case_rows
    if protocol == PANOPTICA:  # the official table: scored subjects, missing ones, then mean, std and median
        return panoptica_table(
            [row for row in rows if not row.get("missing")], [row["subject_id"] for row in rows if row.get("missing")]
        )
    return rows


def parallel_map(function, jobs: list, workers: int):
    """`function` over `jobs` in `workers` processes, results in the jobs' order (an iterator).

    Linux forks the workers (no start-up cost; evaluation imports no torch, so nothing unsafe to
    fork is running); elsewhere they are spawned.
    """
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        yield from pool.map(function, jobs, chunksize=1)


def evaluate_folder(
    pred_dir: Path | str,
    gt_dir: Path | str,
    protocol: str = "brats",
    progress: bool = True,
    labels: str = "auto",
    label_convention: str = "auto",
    workers: int = 1,
    pred_convention: str = "auto",
) -> list[dict]:
    """`ganet evaluate`: every labelled case under `gt_dir` (any supported BraTS layout), its label
    convention found in the files (`data.survey_cases`) unless `labels` / `label_convention` say it;
    the predictions read in the same numbering unless `pred_convention` names theirs."""
    cases = [case for case in find_brats_cases(gt_dir) if case.label is not None]
    if not cases:
        raise KitInputError(f"No label maps (*_seg.nii.gz) found under '{gt_dir}'; --gt must hold the truth.")
    survey = survey_cases(cases, labels, label_convention, progress=progress)
    if progress:
        print(f"label maps: {survey.reason}")
    cases = [replace(case, convention=survey.convention) for case in cases]
    chosen = None if pred_convention == "auto" else pred_convention
    if progress:
        print(f"predictions read in {'the same numbering' if chosen is None else CONVENTIONS[chosen]}")
    return evaluate_cases(
        pred_dir, cases, protocol=protocol, progress=progress, workers=workers, pred_convention=chosen
    )


def region_means(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean of every score column per region (empty columns stay out). For the brats-panoptica table:
    its own mean row (NaN skipped, as the official), as dice, nsd, hd95 (global) and lw_dice, lw_nsd,
    lw_hd95 (lesion-wise)."""
    if rows and "subject_id" in rows[0]:
        mean = next(row for row in rows if row["subject_id"] == "mean")
        return {
            region: {
                "dice": mean[f"global_dsc_{group}"],
                "nsd": mean[f"global_nsd_{group}"],
                "hd95": mean[f"global_hd95_{group}"],
                "lw_dice": mean[f"lesionwise_dsc_mean_{group}"],
                "lw_nsd": mean[f"lesionwise_nsd_mean_{group}"],
                "lw_hd95": mean[f"lesionwise_hd95_mean_{group}"],
            }
            for region, group in PANOPTICA_GROUPS.items()
        }
    means = {}
    for region in REGION_ORDER:
        selected = [row for row in rows if row["region"] == region]
        if not selected:  # a region this data set does not have (RC before 2024)
            continue
        means[region] = {
            column: float(np.mean([row[column] for row in selected]))
            for column in COLUMNS[2:]
            if selected and selected[0][column] is not None
        }
    return means


def write_rows(path: Path | str, rows: list[dict]) -> Path:
    """The CSV of `ganet evaluate` (exactly COLUMNS; for brats-panoptica the official CSV's columns,
    NaN as an empty cell as pandas writes it), written atomically."""
    if rows and "subject_id" in rows[0]:
        return atomic_write_csv(
            path, [{k: "" if isinstance(v, float) and np.isnan(v) else v for k, v in row.items()} for row in rows]
        )
    return atomic_write_csv(
        path, [{column: ("" if row[column] is None else row[column]) for column in COLUMNS} for row in rows]
    )


def read_rows(path: Path | str) -> list[dict]:
    """Rows of a `ganet evaluate` CSV, scores as floats and empty cells as None (as `evaluate_case` gives them)."""
    with open(path, newline="") as handle:
        records = list(csv.DictReader(handle))
    if records and "subject_id" in records[0]:  # the brats-panoptica table
        return [
            {k: v if k == "subject_id" else (float(v) if v != "" else float("nan")) for k, v in row.items()}
            for row in records
        ]
    if records and set(records[0]) != set(COLUMNS):
        raise KitInputError(
            f"'{path}' is not a `ganet evaluate` CSV: its columns must be exactly {', '.join(COLUMNS)}."
        )
    return [
        {
            column: (
                row[column] if column in ("subject", "region") else (float(row[column]) if row[column] != "" else None)
            )
            for column in COLUMNS
        }
        for row in records
    ]


def table_2(run: Run) -> list[dict]:
    """Table 2 as the kit shows it: the paper's rows, then one row per `metrics/<variant>_<protocol>.csv` of `run`.

    Each row: `model`, the paper's columns (`paper.table_2_columns`: the cavity's too for
    post-treatment data; Dice in %, HD95 in mm for `brats`, pixels x 10 for `paper-slicewise`) and
    `source`, which says what the numbers were computed on. Kit rows come in the order ganet,
    unet, other variants; brats before paper-slicewise.
    """
    columns = paper.table_2_columns(run.scheme.regions)
    missing = [float("nan")] * (len(columns) - len(paper.TABLE_2_COLUMNS))  # the paper's rows have no RC
    rows = [
        {"model": f"paper: {name}", **dict(zip(columns, values + missing)), "source": paper.TABLE_2_SOURCES[name]}
        for name, values in paper.TABLE_2.items()
    ]
    metrics_dir = run.metrics_dir
    found = (
        {tuple(path.stem.rsplit("_", 1)): path for path in metrics_dir.glob("*_*.csv")} if metrics_dir.is_dir() else {}
    )
    found = {key: path for key, path in found.items() if key[1] in PROTOCOLS}
    variant_order = {"ganet": 0, "unet": 1}

    def order(key):  # ganet, unet, others; each post-processed before raw; brats before paper-slicewise
        name, raw = key[0].removesuffix(RAW_SUFFIX), key[0].endswith(RAW_SUFFIX)
        return variant_order.get(name, 2), name, PROTOCOLS.index(key[1]), raw

    for variant, protocol in sorted(found, key=order):
        records = read_rows(found[variant, protocol])
        subjects = len(records) - 3 if protocol == PANOPTICA else len({row["subject"] for row in records})
        name = variant.removesuffix(RAW_SUFFIX)
        checkpoint = run.seg(name).best
        trained_here = checkpoint.is_file()
        if variant.endswith(RAW_SUFFIX):
            kind = "raw arg-max"
        else:  # a CSV from elsewhere (no checkpoint here) is what it is: no claim about its post-processing
            kind = f"post-processed: {postprocess_description(checkpoint)}" if trained_here else ""
        source = (
            f"{run.data_kind()}, {subjects} test subjects, profile {run.config.profile}; "
            + (
                f"checkpoint {checkpoint.relative_to(run.run_dir)}"
                if trained_here
                else f"scores from metrics/{found[variant, protocol].name}"
            )
            + (
                ("; WT = the tumour mask" if run.scheme.name == "whole-tumour" else "; WT/ET/TC = labels 1/2/4")
                if protocol == "paper-slicewise"
                else ""
            )
            + (
                "; BraTS 2025+ rules (brats-evaluation 0.0.10): lesions matched one to one, global HD95 in voxels, "
                "373 for an empty side, the official mean row"
                if protocol == PANOPTICA
                else ""
            )
        )
        rows.append(
            {
                "model": f"kit: {name} ({protocol}{', ' + kind if kind else ''})",
                **dict(zip(columns, paper.table_2_row(region_means(records), columns))),
                "source": source,
            }
        )
    return rows


def write_table_2(run: Run) -> Path:
    """`table_2(run)` as RUN/tables/table2.csv (written atomically); returns its path."""
    return atomic_write_csv(run.table_path("table2.csv"), table_2(run))


def format_means(rows: list[dict], protocol: str) -> str:
    """The per-region means as a few printable lines."""
    if protocol == PANOPTICA:
        subjects = len(rows) - 3  # less the mean, std and median rows
        lines = [f"mean over {subjects} subject(s), protocol {protocol} (the official BraTS 2025+ evaluation)"]
        for region, means in region_means(rows).items():
            lines.append(f"  {region}: " + "  ".join(f"{column} {value:.4f}" for column, value in means.items()))
        return "\n".join(lines)
    cases = len({row["subject"] for row in rows})
    lines = [
        f"mean over {cases} case(s), protocol {protocol}"
        + (" (WT = label 1, TC = label 4, ET = label 2, as the authors)" if protocol == "paper-slicewise" else "")
    ]
    for region, means in region_means(rows).items():
        lines.append(f"  {region}: " + "  ".join(f"{column} {value:.4f}" for column, value in means.items()))
    return "\n".join(lines)
