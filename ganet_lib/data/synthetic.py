"""Synthetic brains on real anatomy, written in the BraTS 2020 and NFBS layouts (the embedded default).

Neither BraTS nor NFBS may be downloaded by the kit, so the default run, the tests and the
benchmarks use volumes made here. What is real and what is not:

- **real**: the anatomy. Every subject is the MNI ICBM152 2009 template (an average of 152 adult
  brains; grey- and white-matter probability maps at 1 mm) under its own random affine (scale,
  rotation, shift) and smooth elastic deformation, so no two subjects share their anatomy; CSF
  (ventricles, sulci) is brain - grey - white matter.
- **synthetic**: the intensities (partial volumes times made-up tissue means with the contrasts of
  clinical T1, T1ce, T2 and FLAIR, per-subject variation, texture, a smooth bias field, Rician
  noise) and the tumours: grown from a seed in deep white matter, pushing the tissue around them
  aside (mass effect), with a necrotic centre, an enhancing rim bright only on T1ce (about one
  tumour in five has none), and edema that spreads along white matter, bright on FLAIR and T2 and
  only slightly dark on T1. Tumours are not made easier to see than in real scans.
- BraTS-like geometry: LPS voxel axes, 240 x 240 x 155 at full size; any smaller size samples the
  same head more coarsely. Normal subjects (NFBS layout, 256 x 256 x 192 field, stored in another
  orientation) come from the same template with their own deformations and no tumour.

Everything is drawn from `numpy.random.default_rng(seed)`, so a seed gives identical files.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_folder

# The anatomy: the MNI ICBM152 2009c symmetric template (Fonov et al., NeuroImage 2011), 1 mm,
# skull-stripped T1 and grey- and white-matter probability maps, as nilearn ships them inside its
# wheel (nilearn/datasets/data/, checked in nilearn 0.14.1): nothing is downloaded at run time.
TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
TISSUES = ("csf", "gm", "wm", "ncr", "ed", "et")
# Mean intensity of each tissue per modality (arbitrary units; x 1000 and a per-subject gain on
# writing). Relative contrasts follow clinical MRI of gliomas (e.g. the BraTS description, Menze
# et al., IEEE TMI 2015): T1 WM > GM > CSF, necrosis dark, enhancing tumour about grey-matter
# bright, edema only slightly darker than the tissue it infiltrates; T1ce as T1 but the enhancing
# rim (and vessels) bright; T2 CSF brightest, edema and necrosis bright; FLAIR CSF suppressed,
# edema brightest. The absolute values are made up.
#                       CSF   GM    WM    NCR   ED    ET
CONTRAST = {
    "t1": np.array([0.22, 0.55, 0.80, 0.30, 0.62, 0.50], dtype=np.float32),
    "t1ce": np.array([0.22, 0.55, 0.80, 0.28, 0.62, 1.05], dtype=np.float32),
    "t2": np.array([1.00, 0.62, 0.42, 0.92, 0.85, 0.62], dtype=np.float32),
    "flair": np.array([0.12, 0.62, 0.46, 0.55, 0.95, 0.72], dtype=np.float32),
}
EDEMA_BLEND = 0.6  # edema = 0.6 x its own contrast + 0.4 x the infiltrated tissue: it follows the anatomy
LABELS = {"ncr": 1, "ed": 2, "et": 4}  # BraTS 2020 labels of the tumour tissues

BRATS_SHAPE = (240, 240, 155)
BRATS_FOV_MM = (240.0, 240.0, 155.0)  # a smaller volume covers the same head: coarser voxels
NFBS_SHAPE = (256, 256, 192)
NFBS_FOV_MM = (256.0, 256.0, 192.0)
# The axis codes NFBS-layout files are stored in: RAS, as the NFBS files (the issue that asked for
# these brains says so); not BraTS's LPS, so the loader's reorientation is needed and tested. The
# loader assumes no orientation: it reads each file's affine (a permuted one is tested too).
NFBS_STORAGE_AXCODES = ("R", "A", "S")
BRATS_AXCODES = ("L", "P", "S")  # BraTS 2020 files: affine diag(-1, -1, 1)


@dataclass(frozen=True)
class SynthSpec:
    """What `write_synthetic_dataset` was asked for; saved as SYNTHETIC.json beside the data."""

    cases: int = 24
    normals: int = 8
    shape: tuple[int, int, int] = (96, 96, 64)
    seed: int = 0
    compress: bool = True  # .nii.gz like BraTS 2021+ and NFBS; False writes .nii like the popular BraTS 2020 copy
    # bump when the generator changes, so stale synthetic data is rebuilt (2: template anatomy; 3: NFBS stored RAS)
    version: int = 3


@dataclass(frozen=True)
class Template:
    """The template's tissue maps in [0, 1], (197, 233, 189) in RAS voxel axes, and its affine."""

    brain: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    affine: np.ndarray
    centre_mm: np.ndarray  # centre of the brain's bounding box, world (MNI) mm


@lru_cache(maxsize=1)
def load_template() -> Template:
    """The MNI ICBM152 2009 template from the installed nilearn package (read once per process).

    Raises:
        KitInputError: nilearn is not installed, or its wheel lacks the template files.
    """
    spec = importlib.util.find_spec("nilearn")  # locates the package without importing it (fast)
    folder = Path(spec.origin).parent / "datasets" / "data" if spec and spec.origin else None
    if folder is None or not all((folder / name).is_file() for name in TEMPLATE_FILES.values()):
        raise KitInputError(
            "The synthetic brains are built on the MNI ICBM152 template that nilearn ships; install it with "
            "`pip install nilearn==0.14.1` (requirements.txt pins it)."
        )
    maps = {key: nib.load(folder / name) for key, name in TEMPLATE_FILES.items()}
    affine = maps["t1"].affine
    t1 = np.asarray(maps["t1"].dataobj, dtype=np.float32)
    gm = np.asarray(maps["gm"].dataobj, dtype=np.float32) / 255.0
    wm = np.asarray(maps["wm"].dataobj, dtype=np.float32) / 255.0
    brain = ndimage.binary_fill_holes(t1 > 0).astype(np.float32)  # the template is skull-stripped
    corners = np.argwhere(brain > 0)
    centre_voxel = (corners.min(axis=0) + corners.max(axis=0)) / 2
    return Template(
        brain, gm * brain, wm=wm * brain, affine=affine, centre_mm=(affine @ np.append(centre_voxel, 1.0))[:3]
    )


def brats_affine(shape: tuple[int, int, int]) -> np.ndarray:
    """1 mm, LPS voxel axes, as in the BraTS 2020 files (affine diag(-1, -1, 1), y origin at the far edge).

    The header says 1 mm at every size; a volume smaller than 240 x 240 x 155 holds the same head
    at a coarser sampling (its voxels stand for 240 / X mm), like a down-sampled BraTS file.
    """
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[1, 3] = shape[1] - 1
    return affine


def smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, cells: int) -> np.ndarray:
    """A smooth random field of unit standard deviation with about `cells` bumps along each axis."""
    coarse = rng.standard_normal(tuple(cells + 2 for _ in shape)).astype(np.float32)
    coarse = ndimage.gaussian_filter(coarse, 0.7)
    field = ndimage.zoom(coarse, [s / c for s, c in zip(shape, coarse.shape)], order=1, grid_mode=True, mode="nearest")
    field = field[tuple(slice(0, s) for s in shape)]
    return (field - field.mean()) / (field.std() + 1e-6)


def _rotation(angles: np.ndarray) -> np.ndarray:
    """3 x 3 rotation from angles (radians) about x, y, z."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Tumour:
    """A tumour in subject millimetres (the volume's centre is 0): its seed and its sizes."""

    centre: np.ndarray  # (3,) mm, RAS
    core_mm: float  # radius of the tumour core (necrosis + enhancing rim)
    necrosis_mm: float  # radius of the necrotic centre (0: none)
    edema_mm: float  # how far edema reaches from the centre (along white matter)
    enhancing: bool  # False: a non-enhancing (low-grade-like) core, all NCR/NET
    push: float  # mass effect: tissue at the centre comes from (1 - push) x its distance


def draw_tumour(template: Template, affine: np.ndarray, rng: np.random.Generator) -> Tumour:
    """A seed in deep white matter of this subject (chosen in the template, mapped by the subject's
    affine) and sizes like BraTS gliomas (core radius 8-20 mm, edema 5-25 mm beyond it)."""
    deep = np.argwhere(ndimage.binary_erosion(template.wm > 0.9, iterations=4))
    seed_world = (template.affine @ np.append(deep[rng.integers(len(deep))], 1.0))[:3]
    centre = np.linalg.solve(affine[:3, :3], seed_world - affine[:3, 3])  # template mm -> subject mm
    core = rng.uniform(8.0, 20.0)
    enhancing = rng.random() > 0.2  # about one in five without enhancement, like many low-grade gliomas
    return Tumour(
        centre,
        core,
        necrosis_mm=core * rng.uniform(0.3, 0.7) if enhancing else 0.0,
        edema_mm=core + rng.uniform(5.0, 25.0),
        enhancing=enhancing,
        push=rng.uniform(0.25, 0.5),
    )


def subject_maps(
    shape: tuple[int, int, int], fov_mm: tuple[float, float, float], rng: np.random.Generator, with_tumour: bool
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """One subject's anatomy on a (X, Y, Z) grid in BraTS voxel axes (LPS).

    1. a small random affine (scale 0.92-1.08 per axis, rotation up to 6 degrees, shift up to 5 mm)
       and a smooth elastic displacement (up to about 3 mm) map the subject's space into the template;
    2. with a tumour, tissue is pushed away from its seed (mass effect: a radial displacement that
       fades over about 1.5 core radii);
    3. the template's brain, GM and WM maps are sampled there (linear interpolation, partial
       volumes); CSF is brain - GM - WM;
    4. the tumour is grown from the seed on a lumpy distance field: necrosis, an enhancing rim,
       and edema that spreads along white matter.

    Returns:
        fractions {"csf", "gm", "wm"} (X, Y, Z) float32 and the tumour's tissue classes (X, Y, Z)
        uint8 (0 none, 1 NCR, 2 ED, 4 ET: the BraTS labels), or None without a tumour.
    """
    template = load_template()
    spacing = np.array(fov_mm, dtype=np.float32) / np.array(shape)
    # Subject mm of every voxel, RAS, centred: LPS voxel axes, so x and y run against i and j.
    axes = [(np.arange(n, dtype=np.float32) - (n - 1) / 2) * s for n, s in zip(shape, spacing)]
    grid = np.stack(np.meshgrid(-axes[0], -axes[1], axes[2], indexing="ij"))  # (3, X, Y, Z) mm
    # Step 1: the subject's affine into template mm.
    scale = rng.uniform(0.92, 1.08, 3)
    affine = np.eye(4)
    affine[:3, :3] = _rotation(np.radians(rng.uniform(-6, 6, 3))) @ np.diag(scale)
    affine[:3, 3] = template.centre_mm + rng.uniform(-5, 5, 3)
    tumour = draw_tumour(template, affine, rng) if with_tumour else None
    points = grid
    if tumour is not None:  # step 2: mass effect
        offset = grid - tumour.centre.reshape(3, 1, 1, 1)
        distance = np.sqrt((offset**2).sum(axis=0))
        shrink = 1 - tumour.push * np.exp(
            -((distance / (1.5 * tumour.core_mm)) ** 2)
        )  # monotone in distance for push < 1
        points = tumour.centre.reshape(3, 1, 1, 1) + offset * shrink
    world = np.einsum("ij,j...->i...", affine[:3, :3], points) + affine[:3, 3].reshape(3, 1, 1, 1)
    world += np.stack([3.0 * smooth_noise(shape, rng, cells=5) for _ in range(3)])  # elastic, mm
    voxel = np.einsum("ij,j...->i...", np.linalg.inv(template.affine)[:3, :3], world) + np.linalg.inv(template.affine)[
        :3, 3
    ].reshape(3, 1, 1, 1)

    # Step 3: partial volumes from the probability maps.
    def sample(volume: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(volume, voxel, order=1, mode="constant", cval=0.0).astype(np.float32)

    brain = sample(template.brain)
    gm, wm = sample(template.gm), sample(template.wm)
    inside = brain > 0.5
    fractions = {"gm": np.where(inside, gm, 0), "wm": np.where(inside, wm, 0)}
    fractions["csf"] = np.where(inside, np.clip(1 - gm - wm, 0, 1), 0)
    if tumour is None:
        return fractions, None
    # Step 4: the tumour on a lumpy distance field (in mm).
    offset = grid - tumour.centre.reshape(3, 1, 1, 1)
    lumpy = np.sqrt((offset**2).sum(axis=0)) / (1 + 0.3 * smooth_noise(shape, rng, cells=6))
    labels = np.zeros(shape, np.uint8)
    reach = 1 + 0.3 * smooth_noise(shape, rng, cells=8)
    edema = (lumpy < tumour.edema_mm * reach) & (wm > 0.35) & inside  # vasogenic edema tracks white matter
    labels[edema] = LABELS["ed"]
    core = (lumpy < tumour.core_mm) & inside
    labels[core] = LABELS["et"] if tumour.enhancing else LABELS["ncr"]
    labels[(lumpy < tumour.necrosis_mm) & inside] = LABELS["ncr"]
    return fractions, labels


def render_modalities(
    fractions: dict[str, np.ndarray],
    labels: np.ndarray | None,
    rng: np.random.Generator,
    modalities: tuple[str, ...] = ("t1", "t1ce", "t2", "flair"),
) -> dict[str, np.ndarray]:
    """Tissue fractions and tumour labels -> MR-like images: per-subject contrasts, texture,
    vessels on T1ce, a smooth bias field, partial-volume blur and Rician noise.

    Returns:
        modality name -> int16 array, 0 outside the brain (skull-stripped, as BraTS).
    """
    shape = fractions["gm"].shape
    inside = (fractions["gm"] + fractions["wm"] + fractions["csf"]) > 0
    texture = smooth_noise(shape, rng, cells=max(8, shape[0] // 6))
    # Thin, winding bright lines in the sulci and on the cortex: vessels that enhance on T1ce.
    vessels = (
        (np.abs(smooth_noise(shape, rng, cells=max(6, shape[0] // 8))) < 0.05)
        & ((fractions["csf"] + fractions["gm"]) > 0.5)
        & inside
    )
    gain = rng.uniform(0.8, 1.25)  # subject-to-subject scanner gain
    images = {}
    for name in modalities:
        contrast = CONTRAST[name] * rng.normal(1.0, 0.04, len(TISSUES)).astype(
            np.float32
        )  # subject-to-subject contrast
        normal = sum(fractions[t] * contrast[TISSUES.index(t)] for t in ("csf", "gm", "wm"))
        image = normal * (1 + 0.03 * texture)
        if labels is not None:
            image = np.where(
                labels == LABELS["ed"], EDEMA_BLEND * contrast[TISSUES.index("ed")] + (1 - EDEMA_BLEND) * image, image
            )
            for tissue in ("ncr", "et"):
                image = np.where(
                    labels == LABELS[tissue], contrast[TISSUES.index(tissue)] * (1 + 0.05 * texture), image
                )
        if name == "t1ce":
            image = np.where(vessels, image + 0.35, image)
        image = ndimage.gaussian_filter(image, 0.6, truncate=2.0)  # partial-volume blur
        image = image * np.exp(0.10 * smooth_noise(shape, rng, cells=2))  # smooth multiplicative bias field
        sigma = 0.025
        image = np.sqrt((image + rng.normal(0, sigma, shape)) ** 2 + rng.normal(0, sigma, shape) ** 2)  # Rician noise
        images[name] = np.round(np.where(inside, image, 0) * 1000 * gain).astype(np.int16)
    return images


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def write_brats_case(
    root: Path, index: int, shape: tuple[int, int, int], rng: np.random.Generator, suffix: str
) -> Path:
    """Write BraTS20_Training_NNN/BraTS20_Training_NNN_{t1,t1ce,t2,flair,seg}.nii[.gz] under `root`."""
    case_id = f"BraTS20_Training_{index:03d}"
    folder = root / case_id
    folder.mkdir(parents=True)
    fractions, labels = subject_maps(shape, BRATS_FOV_MM, rng, with_tumour=True)
    affine = brats_affine(shape)
    for name, image in render_modalities(fractions, labels, rng).items():
        _save(image, affine, folder / f"{case_id}_{name}{suffix}")
    _save(labels, affine, folder / f"{case_id}_seg{suffix}")
    return folder


def write_nfbs_subject(
    root: Path, index: int, shape: tuple[int, int, int], rng: np.random.Generator, suffix: str
) -> Path:
    """Write A000NNNNN/sub-A000NNNNN_ses-NFB3_T1w{,_brain,_brainmask}.nii[.gz] under `root`.

    The head is generated in BraTS voxel axes and stored in NFBS_STORAGE_AXCODES, with a field of
    view scaled like NFBS's 256 x 256 x 192 against BraTS's 240 x 240 x 155.
    """
    subject = f"A{10000000 + index:08d}"
    folder = root / subject
    folder.mkdir(parents=True)
    nfbs_shape = tuple(int(round(s * n / b)) for s, n, b in zip(shape, NFBS_SHAPE, BRATS_SHAPE))
    fractions, _ = subject_maps(nfbs_shape, NFBS_FOV_MM, rng, with_tumour=False)
    brain_t1 = render_modalities(fractions, None, rng, modalities=("t1",))["t1"]
    brain_mask = (brain_t1 != 0).astype(np.uint8)
    # The unstripped T1w: a crude scalp shell around the brain, so that _brain really differs.
    head = ndimage.binary_dilation(brain_mask, iterations=3) & ~ndimage.binary_dilation(brain_mask, iterations=1)
    t1_head = np.where(head, np.int16(600), brain_t1)

    lps_image = nib.Nifti1Image(np.zeros(nfbs_shape, np.uint8), brats_affine(nfbs_shape))
    to_storage = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt(BRATS_AXCODES), nib.orientations.axcodes2ornt(NFBS_STORAGE_AXCODES)
    )
    for tag, volume in (("T1w", t1_head), ("T1w_brain", brain_t1), ("T1w_brainmask", brain_mask)):
        stored = nib.Nifti1Image(volume, lps_image.affine).as_reoriented(to_storage)
        stored.header.set_xyzt_units("mm")
        nib.save(stored, folder / f"sub-{subject}_ses-NFB3_{tag}{suffix}")
    return folder


def read_spec(out: Path) -> SynthSpec | None:
    """The SynthSpec a complete synthetic data set at `out` was written with, or None."""
    manifest = out / "SYNTHETIC.json"
    if not manifest.is_file():
        return None
    values = json.loads(manifest.read_text())
    values["shape"] = tuple(values["shape"])
    return SynthSpec(**values)


def write_synthetic_dataset(out: Path | str, spec: SynthSpec, progress: bool = True) -> Path:
    """Write `out/brats/...` and `out/nfbs/...` for `spec`, atomically.

    The data set is built in a temporary sibling folder and renamed into place once complete, so
    an interrupted run never leaves a folder that looks finished. If `out` already holds data
    written with the same spec, nothing is done.

    Raises:
        KitInputError: `out` exists and holds something else.
    """
    out = Path(out)
    if read_spec(out) == spec:
        return out
    if out.exists() and any(out.iterdir()):
        raise KitInputError(
            f"'{out}' already exists and does not hold synthetic data made with these settings; "
            "remove it or choose another output folder."
        )
    if min(spec.shape) < 16 or spec.cases < 0 or spec.normals < 0 or spec.cases + spec.normals < 1:
        raise KitInputError(
            "Synthetic data needs a shape of at least 16 voxels per axis and at least one case or normal subject; "
            f"got {spec}."
        )
    suffix = ".nii.gz" if spec.compress else ".nii"
    # One generator per subject, from (seed, kind, index): a subject's content does not depend on
    # how many others are written.
    items = [("brats", i) for i in range(1, spec.cases + 1)] + [("nfbs", i) for i in range(1, spec.normals + 1)]
    # finished elsewhere: another process (e.g. a second rank of a multi-process launch) wrote the same data first
    with atomic_folder(out, finished_elsewhere=lambda: read_spec(out) == spec) as partial:
        for kind, index in tqdm(items, desc="synthetic subjects", disable=not progress):
            case_rng = np.random.default_rng([spec.seed, 0 if kind == "brats" else 1, index])
            if kind == "brats":
                write_brats_case(partial / "brats", index, shape=spec.shape, rng=case_rng, suffix=suffix)
            else:
                write_nfbs_subject(partial / "nfbs", index, shape=spec.shape, rng=case_rng, suffix=suffix)
        (partial / "SYNTHETIC.json").write_text(json.dumps(asdict(spec), indent=2))
    return out
