"""Label maps as data sets number them, and the two label schemes the kit trains on.

Conventions met in BraTS-like data (read from the label files, decided once per data set):

- ``brats2012`` (BraTS 2012-2016): 1 necrosis, 2 edema, 3 non-enhancing tumour, 4 enhancing.
  Labels 1 and 3 together are the later NCR/NET label (Menze et al., IEEE TMI 2015; Bakas et al.,
  arXiv 1811.02629, which merged them from 2017 on).
- ``brats2017`` (BraTS 2017-2021): 1 NCR/NET, 2 edema, 4 enhancing.
- ``brats2023`` (BraTS 2023 on): 1 NCR, 2 edema, 3 enhancing.
- ``brats2024`` (BraTS 2024 on, adult glioma post-treatment; also the 2025/2026 data): 2023-style
  names, 1 NETC, 2 SNFH, 3 enhancing, 4 RC, the resection cavity. A data set mixing 2023 maps
  (no 4) with 2024 maps is one data set of this convention: 2024 extends 2023.
- ``whole-tumour``: one tumour mask, 0 outside and any non-zero value (integer or float) inside.

Inside the kit every label map uses one of three schemes: ``brats`` (0 background, 1 NCR/NET, 2 ED,
4 ET: the 2017-2021 numbering), ``brats-rc`` (the same and 5 RC, for post-treatment data) or
``whole-tumour`` (0 background, 1 tumour). `to_kit_labels` converts a file's values and
`from_kit_labels` writes them back in a convention's own numbering; `survey_labels` decides the
convention of a whole data set and refuses a mixture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganet_lib.errors import KitInputError

CONVENTIONS = {
    "brats2012": "BraTS 2012-2016 numbering (1 necrosis, 2 edema, 3 non-enhancing core, 4 enhancing; 1 and 3 become "
    "NCR/NET)",
    "brats2017": "BraTS 2017-2021 numbering (1 NCR/NET, 2 edema, 4 enhancing)",
    "brats2023": "BraTS 2023+ numbering (1 NCR, 2 edema, 3 enhancing; 3 becomes the kit's 4)",
    "brats2024": "BraTS 2024+ post-treatment numbering (1 NETC, 2 SNFH, 3 enhancing, 4 resection cavity; 3 becomes "
    "the kit's 4 and 4 the kit's 5)",
    "whole-tumour": "whole-tumour masks (0 background, any non-zero value tumour; the kit's label 1)",
}
_ALLOWED = {
    "brats2012": {0, 1, 2, 3, 4},
    "brats2017": {0, 1, 2, 4},
    "brats2023": {0, 1, 2, 3},
    "brats2024": {0, 1, 2, 3, 4},
}
# A file's values that mean something else in the kit's numbering (the rest are equal).
TO_KIT = {"brats2012": {3: 1}, "brats2017": {}, "brats2023": {3: 4}, "brats2024": {3: 4, 4: 5}}
# The kit's values written back in a convention's own numbering (2012-2016's non-enhancing core was
# merged into NCR/NET on reading, so it is written as 1, as BraTS 2017-2021 does).
FROM_KIT = {"brats2012": {}, "brats2017": {}, "brats2023": {4: 3}, "brats2024": {4: 3, 5: 4}}
RC = 5  # the resection cavity in the kit's numbering


@dataclass(frozen=True)
class LabelScheme:
    """The classes a network predicts, the label value written for each, and the evaluation regions."""

    name: str
    class_labels: tuple[int, ...]  # label value of each class index, as written to prediction files
    class_names: tuple[str, ...]
    regions: dict[str, tuple[int, ...]]  # evaluation region -> the label values it is made of

    @property
    def num_classes(self) -> int:
        return len(self.class_labels)

    def labels_to_classes(self, label: np.ndarray) -> np.ndarray:
        """Kit label values -> class indices (uint8)."""
        lookup = np.zeros(256, np.uint8)
        lookup[list(self.class_labels)] = np.arange(self.num_classes)
        return lookup[label]

    def classes_to_labels(self, classes: np.ndarray) -> np.ndarray:
        """Class indices -> kit label values (uint8)."""
        return np.asarray(self.class_labels, np.uint8)[classes]

    def region_classes(self) -> dict[str, tuple[int, ...]]:
        """Each evaluation region as a set of class indices."""
        return {region: tuple(self.class_labels.index(v) for v in values) for region, values in self.regions.items()}

    def region_mask(self, label: np.ndarray, region: str) -> np.ndarray:
        return np.isin(label, self.regions[region])


BRATS = LabelScheme(
    "brats", (0, 1, 2, 4), ("background", "NCR/NET", "ED", "ET"), {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}
)
# Post-treatment data: the cavity is a class of its own and a region of its own (RC), outside WT and TC.
BRATS_RC = LabelScheme(
    "brats-rc",
    (0, 1, 2, 4, RC),
    ("background", "NCR/NET", "ED", "ET", "RC"),
    {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,), "RC": (RC,)},
)
WHOLE_TUMOUR = LabelScheme("whole-tumour", (0, 1), ("background", "tumour"), {"WT": (1,)})
SCHEMES = {scheme.name: scheme for scheme in (BRATS, BRATS_RC, WHOLE_TUMOUR)}


def scheme_of(convention: str) -> LabelScheme:
    """The kit's scheme for a data set's convention."""
    return {"whole-tumour": WHOLE_TUMOUR, "brats2024": BRATS_RC}.get(convention, BRATS)


def scheme_for(labels_setting: str) -> LabelScheme:
    """The scheme of a resolved data.labels setting (`brats` or `whole-tumour`). An unresolved
    `auto` (e.g. a checkpoint from before whole-tumour masks were supported) is BraTS."""
    return SCHEMES.get(labels_setting, BRATS)


def default_convention(naming: str) -> str:
    """The convention a file naming implies when nothing else is known (2023 names: ET is 3)."""
    return "brats2023" if naming == "brats2023" else "brats2017"


def stored_labels(raw: np.ndarray, convention: str, source: str = "the label map") -> np.ndarray:
    """A label map as stored (any integer or float dtype) as uint8 in its own numbering, after checking
    that it holds only values `convention` uses (whole-tumour masks: 0/1).

    Raises:
        KitInputError: a value the convention does not use (names `source` and the fix).
    """
    if convention == "whole-tumour":
        return (raw != 0).astype(np.uint8)
    if raw.dtype.kind == "f":  # some copies store labels as floats
        raw = np.rint(raw)
    allowed = _ALLOWED[convention]
    if raw.dtype == np.uint8:  # the common case: only the labelled voxels are counted (a few % of a volume)
        present = set(nonzero_uint8_values(raw)) | {0}
    else:
        low, high = (raw.min(), raw.max()) if raw.size else (0, 0)
        in_range = 0 <= low and high <= 4
        present = set(nonzero_uint8_values(raw.astype(np.uint8))) | {0} if in_range else {int(low), int(high)}
    if not present <= allowed:
        unexpected = sorted(present - allowed)
        raise KitInputError(
            f"{source} holds label value(s) {', '.join(f'{v:g}' for v in unexpected)}, which the "
            f"{CONVENTIONS[convention]} does not use; "
            "fix the file or set data.label_convention (or data.labels: whole-tumour) to the data set's convention."
        )
    return raw.astype(np.uint8, copy=False)


KIT = "kit"  # the kit's own numbering, for `renumber`


def renumber(labels: np.ndarray, source: str, target: str) -> np.ndarray:
    """uint8 `labels` numbered as `source` in the numbering `target` (conventions, or KIT): through the
    kit's numbering (`TO_KIT`, then `FROM_KIT`; whole-tumour: 0/1). The array itself when the two
    numberings agree on every value (2023 to 2024, a convention to itself)."""
    if target == "whole-tumour":
        return (labels != 0).astype(np.uint8)
    lookup = np.arange(256, dtype=np.uint8)
    for old, new in TO_KIT.get(source, {}).items():
        lookup[old] = new
    back = np.arange(256, dtype=np.uint8)
    for old, new in FROM_KIT.get(target, {}).items():
        back[old] = new
    lookup = back[lookup]
    return labels if np.array_equal(lookup, np.arange(256)) else lookup[labels]


def to_kit_labels(raw: np.ndarray, convention: str, source: str = "the label map") -> np.ndarray:
    """A label map as stored (any integer or float dtype) -> the kit's uint8 labels (`stored_labels`,
    then `renumber`).

    Raises:
        KitInputError: a value the convention does not use (names `source` and the fix).
    """
    return renumber(stored_labels(raw, convention, source), convention, KIT)


def from_kit_labels(label: np.ndarray, convention: str) -> np.ndarray:
    """The kit's uint8 labels in a convention's own numbering (`FROM_KIT`; whole-tumour: 0/1)."""
    return renumber(label.astype(np.uint8, copy=False), KIT, convention)


def numbering_for(convention: str, scheme: LabelScheme) -> str:
    """The numbering a prediction of `scheme` is written in for data of `convention`: the data's own,
    except that a cavity needs the 2024+ numbering (the older ones have no value for it)."""
    if scheme.name == "whole-tumour":
        return "whole-tumour"
    if scheme.name == "brats-rc" and convention != "brats2024":
        return "brats2024"
    return "brats2017" if convention == "whole-tumour" else convention


def file_values(convention: str) -> tuple[int, ...]:
    """The label values a convention's files hold, background included."""
    return (0, 1) if convention == "whole-tumour" else tuple(sorted(_ALLOWED[convention]))


def nonzero_uint8_values(raw: np.ndarray) -> list[int]:
    """The distinct non-zero values of a uint8 map, ascending. Counting only the non-zero voxels is
    several times faster than `np.bincount` over a whole BraTS volume, which copies it to int64."""
    flat = raw.ravel(
        order="K"
    )  # memory order, no copy (NIfTI arrays are Fortran-ordered; indexing those directly is 20x slower)
    return np.flatnonzero(np.bincount(flat[flat != 0], minlength=1)).tolist()


def distinct_values(raw: np.ndarray) -> tuple[float, ...]:
    """The distinct non-zero values of a label map, as floats (a mask may be float).

    Integer maps are counted with `np.bincount` (about 10x faster than `np.unique` on a BraTS volume).
    """
    if raw.dtype in (np.uint8, np.bool_):
        return tuple(float(v) for v in nonzero_uint8_values(raw.view(np.uint8)))
    if raw.dtype.kind in "iub" and raw.size:
        low, high = int(raw.min()), int(raw.max())
        if high - low < 1 << 16:
            present = np.flatnonzero(np.bincount(raw.ravel(order="K").astype(np.int64) - low)) + low
            return tuple(float(v) for v in present if v != 0)
    return tuple(float(v) for v in np.unique(raw) if v != 0)


@dataclass(frozen=True)
class LabelSurvey:
    """What `survey_labels` decided for a data set."""

    convention: str  # a key of CONVENTIONS
    reason: str  # one sentence: how it was decided (printed by validate and the runs)

    @property
    def scheme(self) -> LabelScheme:
        return scheme_of(self.convention)


def survey_labels(
    values: dict[str, tuple[float, ...]],
    namings: dict[str, str],
    labels: str = "auto",
    convention: str = "auto",
    files: dict[str, str] | None = None,
) -> LabelSurvey:
    """Decide the label convention of a data set from the non-zero values of each label map.

    Args:
        values: case id -> the distinct non-zero values of its label map (`distinct_values`).
        namings: case id -> its file naming (brats2020 | brats2021 | brats2023).
        labels: ``auto``, ``brats`` or ``whole-tumour`` (the setting data.labels).
        convention: ``auto`` or a BraTS convention (the setting data.label_convention).
        files: case id -> its label file, so that a refusal names the file (else the case).

    Rules (``auto``): maps holding only one non-zero value across the whole data set, or values
    no BraTS convention uses (255, 0.7, ...), are whole-tumour masks. Otherwise each map admits
    the BraTS conventions whose values it fits (2023 file names admit only 2023); a map holding
    both 3 and 4 can only be 2012-2016; 3 without any 4 in the data set is 2023 under 2023 names
    and refused as ambiguous otherwise; maps with 3 but no 4 beside maps with 4 but no 3, and no
    map with both, are refused as a likely mixture of 2017-2021 and 2023+ files.

    Raises:
        KitInputError: a mixture or an ambiguity, in one sentence with the fix.
    """

    def named(case: str, capital: bool = False) -> str:  # the file when known, else the case
        return f"'{files[case]}'" if files and case in files else f"{'The' if capital else 'the'} label map of {case}"

    def listed(case: str, only=None) -> str:
        return ", ".join(f"{v:g}" for v in values[case] if only is None or v in only)

    if labels not in ("auto", "brats", "brats-rc", "whole-tumour"):
        raise KitInputError(f"data.labels is '{labels}'; use auto, brats or whole-tumour.")
    labels = "brats" if labels == "brats-rc" else labels  # a resolved run's setting: BraTS labels with a cavity
    if convention != "auto" and convention not in _ALLOWED:
        raise KitInputError(f"data.label_convention is '{convention}'; use auto, {', '.join(_ALLOWED)}.")
    if labels == "whole-tumour":
        return LabelSurvey("whole-tumour", "data.labels is whole-tumour: every non-zero voxel is tumour.")
    union = set().union(*values.values()) if values else set()
    non_brats = sorted(v for v in union if v not in (1, 2, 3, 4))
    if labels == "auto" and (non_brats or len(union) == 1):
        multi = [case for case, v in values.items() if len(set(v) & {1, 2, 3, 4}) > 1]
        if non_brats and multi:
            odd = next(case for case, v in values.items() if set(v) & set(non_brats))
            strange, brats_part = listed(odd, non_brats), listed(odd, (1, 2, 3, 4))
            if odd in multi:  # a BraTS map with a stray value
                raise KitInputError(
                    f"{named(odd, capital=True)} holds {strange} beside the BraTS labels {brats_part}, and no BraTS "
                    "convention uses "
                    f"{strange}; set those voxels to the label they belong to (or 0) in that file, or set "
                    "data.labels: whole-tumour if every map is a tumour mask."
                )
            raise KitInputError(
                f"{named(odd, capital=True)} holds {strange}, which no BraTS convention uses, while {named(multi[0])} "
                "holds the BraTS labels "
                f"{listed(multi[0])}; fix the first file, or convert all label maps to one convention."
            )
        shown = ", ".join(f"{v:g}" for v in sorted(union)[:3]) + (", ..." if len(union) > 3 else "")
        return LabelSurvey(
            "whole-tumour",
            f"every label map holds {'the single value' if len(union) == 1 else 'values outside 1-4:'} {shown}: "
            "whole-tumour masks (set data.labels: brats if they are not).",
        )
    if non_brats:
        odd = next(case for case, v in values.items() if set(v) & set(non_brats))
        raise KitInputError(
            f"{named(odd, capital=True)} holds value(s) {listed(odd, non_brats)}, which no BraTS convention uses; "
            "fix that file, or set data.labels: whole-tumour if the label maps are tumour masks."
        )

    def admitted(case: str) -> set[str]:
        fits = {name for name, allowed in _ALLOWED.items() if set(values[case]) <= allowed}
        return fits & {"brats2023", "brats2024"} if namings.get(case) == "brats2023" else fits - {"brats2024"}

    if convention != "auto":
        wrong = next((case for case in values if convention not in admitted(case)), None)
        if wrong is not None:
            raise KitInputError(
                f"{named(wrong, capital=True)} holds {listed(wrong)}, which the {CONVENTIONS[convention]} does not "
                "use; "
                "fix data.label_convention or that file."
            )
        return LabelSurvey(convention, f"data.label_convention is {convention}: {CONVENTIONS[convention]}.")
    with_three = [case for case, v in values.items() if 3 in v]
    with_four = [case for case, v in values.items() if 4 in v]
    both = [case for case in with_three if 4 in values[case]]
    names_2023 = [case for case in values if namings.get(case) == "brats2023"]
    if names_2023 and len(names_2023) < len(values) and (with_four or with_three):
        other = next(case for case in values if namings.get(case) != "brats2023")
        raise KitInputError(
            f"The data set mixes BraTS 2023 files ({named(names_2023[0])}: 3 is enhancing tumour) with older ones "
            f"({named(other)}); "
            "convert the label maps to one convention or split the data set."
        )
    if names_2023 and with_four:  # 2023-style names with a cavity: post-treatment data (2024 on)
        others = len(values) - len(with_four)
        return LabelSurvey(
            "brats2024",
            f"2023-style file names and label 4 in {len(with_four)} of {len(values)} label maps ({with_four[0]}, ...): "
            f"{CONVENTIONS['brats2024']}"
            + (f"; the {others} maps without 4 read the same (2024 extends 2023)." if others else "."),
        )
    if both:
        return LabelSurvey("brats2012", f"{both[0]} holds both 3 and 4: {CONVENTIONS['brats2012']}.")
    if with_three and with_four:
        raise KitInputError(
            f"{named(with_three[0], capital=True)} holds label 3 without 4 and {named(with_four[0])} holds 4 without "
            "3, and no label map holds both: this looks like "
            "a mixture of BraTS 2023+ (3 = enhancing) and 2017-2021 (4 = enhancing) files; convert them to one "
            "convention, "
            "or set data.label_convention: brats2012 if this is BraTS 2012-2016 data."
        )
    if with_three:
        if names_2023:
            return LabelSurvey("brats2023", f"2023 file names and label 3 without 4: {CONVENTIONS['brats2023']}.")
        raise KitInputError(
            f"The label maps hold 3 but never 4 ({named(with_three[0])}): 3 is non-enhancing core in BraTS 2012-2016 "
            "and enhancing tumour "
            "in 2023+; set data.label_convention to brats2012 or brats2023."
        )
    chosen = "brats2023" if names_2023 else "brats2017"
    return LabelSurvey(
        chosen,
        f"labels {', '.join(f'{v:g}' for v in sorted(union)) or 'none'} and {'2023' if names_2023 else 'pre-2023'} "
        f"file names: {CONVENTIONS[chosen]}.",
    )
