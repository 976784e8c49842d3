"""The paper's published numbers (SPEC section 5), for printing beside the kit's own.

Source: "GANet-Seg: Adversarial Learning for Brain Tumor Segmentation with Hybrid Generative
Models", Tables 1 and 2. Read SPEC section 5 before comparing: the GANet-Seg row of Table 2 was
computed with the authors' slice-wise protocol (WT / ET / TC columns are the labels 1 / 2 / 4),
the other rows come from another paper (arXiv 2411.17617) scored with 3D BraTS metrics.
"""

from __future__ import annotations

# Table 1: 36 BraTS 2020 test subjects, 5580 raw T1 slices at 240 x 240, 2379 with tumour.
TABLE_1_SLICES, TABLE_1_POSITIVE = 5580, 2379
TABLE_1 = [
    {"threshold": 0.1, "accuracy": 0.7507, "sensitivity": 0.5124, "TP": 1219, "FN": 1160, "FP": 231},
    {"threshold": 0.2, "accuracy": 0.7953, "sensitivity": 0.8852, "TP": 2106, "FN": 273, "FP": 869},
    {"threshold": 0.3, "accuracy": 0.7640, "sensitivity": 0.9500, "TP": 2260, "FN": 119, "FP": 1198},
    {"threshold": 0.4, "accuracy": 0.7292, "sensitivity": 0.9811, "TP": 2334, "FN": 45, "FP": 1466},
]

# Table 2, in the paper's column order; Dice and LW Dice in %, HD95 as printed.
TABLE_2_COLUMNS = [
    "Dice WT",
    "Dice ET",
    "Dice TC",
    "HD95 WT",
    "HD95 ET",
    "HD95 TC",
    "LW Dice WT",
    "LW Dice ET",
    "LW Dice TC",
]
TABLE_2 = {
    "Optimized U-Net": [81.44, 72.25, 75.81, 22.30, 48.47, 29.94, 68.50, 67.85, 71.27],
    "Swin-UNETR": [78.59, 72.51, 74.75, 22.85, 48.83, 28.90, 60.96, 65.75, 68.03],
    "UMamba": [85.69, 77.41, 82.07, 14.51, 37.48, 19.68, 78.03, 73.95, 78.05],
    "GANnet-Seg": [81.28, 79.81, 88.84, 27.06, 50.13, 13.95, 81.92, 74.08, 86.28],
}
TABLE_2_SOURCES = {
    "Optimized U-Net": "arXiv 2411.17617 (BraTS 2024 entry; 3D BraTS metrics, other data)",
    "Swin-UNETR": "arXiv 2411.17617 (BraTS 2024 entry; 3D BraTS metrics, other data)",
    "UMamba": "arXiv 2411.17617 (BraTS 2024 entry; 3D BraTS metrics, other data)",
    "GANnet-Seg": "the authors, slice-wise protocol (WT/ET/TC = labels 1/2/4), BraTS 2020, 36 subjects",
}


RC_COLUMNS = ["Dice RC", "HD95 RC", "LW Dice RC"]  # post-treatment data (BraTS 2024+): the resection cavity


def table_2_columns(regions) -> list[str]:
    """The paper's columns, the cavity's when `regions` hold RC, then the normalised surface Dice of
    each region (the BraTS 2025+ protocol's; the paper has neither)."""
    with_rc = "RC" in regions
    nsd = [f"NSD {region}" for region in ("WT", "ET", "TC", "RC") if region in regions or region != "RC"]
    return TABLE_2_COLUMNS + (RC_COLUMNS if with_rc else []) + nsd


def table_2_row(means: dict[str, dict[str, float]], columns: list[str] = TABLE_2_COLUMNS) -> list[float]:
    """A Table 2 row (paper's column order and units) from `evaluate.region_means` output.

    Dice, LW Dice and NSD become %, HD95 stays as computed (mm for `brats`, pixels x 10 for
    `paper-slicewise`, voxels for `brats-panoptica`'s global HD95). A missing column is NaN.
    """
    row = []
    for column in columns:
        metric, region = column.rsplit(" ", 1)
        key = {"Dice": "dice", "HD95": "hd95", "LW Dice": "lw_dice", "NSD": "nsd"}[metric]
        value = means.get(region, {}).get(key, float("nan"))
        row.append(100.0 * value if key != "hd95" else value)
    return row
