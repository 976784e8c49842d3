"""Synthetic brains written in the real BraTS 2020 and NFBS layouts (the kit's embedded default).

Neither BraTS nor NFBS may be downloaded by the kit, so the default run, the tests and the
benchmarks use volumes made here. They are meant to be good enough to learn from, not to look
like any real patient:

- a brain-shaped head (zero outside: skull-stripped, as BraTS is) with white matter, a cortical
  grey-matter ribbon of varying thickness, outer CSF, a midline fissure and two lateral ventricles;
- four modalities with the usual relative contrasts (T1: WM > GM > CSF; T2: CSF bright; FLAIR:
  CSF dark, edema bright; T1ce: enhancing rim bright);
- tumours of random size, position and irregular shape: a necrotic core (label 1) inside an
  enhancing rim (label 4) inside edema (label 2); some without enhancement (low-grade-like, core
  labelled 1 only) and some with a second, smaller focus;
- a smooth multiplicative bias field per modality, partial-volume blur and Gaussian noise.

Everything is drawn from `numpy.random.default_rng(seed)`, so a seed gives identical files.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from ganet_lib.errors import KitInputError

# Tissue classes of the anatomy volume (not BraTS labels).
BACKGROUND, CSF, GREY, WHITE, NECROSIS, EDEMA, ENHANCING = range(7)

# Mean intensity of each tissue class per modality (arbitrary units, scaled by 1000 on writing).
# Relative contrasts follow the usual MR appearance; the absolute values are made up.
#                       bg   CSF   GM    WM    NCR   ED    ET
CONTRAST = {
    "t1":    np.array([0.0, 0.25, 0.55, 0.80, 0.30, 0.45, 0.55], dtype=np.float32),
    "t1ce":  np.array([0.0, 0.25, 0.55, 0.78, 0.22, 0.45, 1.00], dtype=np.float32),
    "t2":    np.array([0.0, 1.00, 0.60, 0.40, 0.90, 0.80, 0.65], dtype=np.float32),
    "flair": np.array([0.0, 0.15, 0.60, 0.45, 0.55, 0.95, 0.75], dtype=np.float32),
}
# Tissue class -> BraTS label (0 background and normal tissue, 1 NCR/NET, 2 ED, 4 ET).
TISSUE_TO_BRATS = np.array([0, 0, 0, 0, 1, 2, 4], dtype=np.uint8)

BRATS_SHAPE = (240, 240, 155)
NFBS_SHAPE = (256, 256, 192)
# The axis codes NFBS-layout files are stored in. Real NFBS files are not in BraTS's orientation;
# storing the synthetic ones permuted and flipped makes the loader's reorientation necessary and
# testable. (The real files' exact orientation is not assumed anywhere.)
NFBS_STORAGE_AXCODES = ("P", "I", "R")
BRATS_AXCODES = ("L", "P", "S")  # BraTS 2020 files: affine diag(-1, -1, 1)


@dataclass(frozen=True)
class SynthSpec:
    """What `write_synthetic_dataset` was asked for; saved as SYNTHETIC.json beside the data."""

    cases: int = 24
    normals: int = 8
    shape: tuple[int, int, int] = (96, 96, 64)
    seed: int = 0
    compress: bool = True  # .nii.gz like BraTS 2021+ and NFBS; False writes .nii like the popular BraTS 2020 copy
    version: int = 1  # bump when the generator changes, so stale synthetic data is rebuilt


def brats_affine(shape: tuple[int, int, int]) -> np.ndarray:
    """1 mm, LPS voxel axes, as in the BraTS 2020 files (affine diag(-1, -1, 1), y origin at the far edge)."""
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


def _normalised_grid(shape: tuple[int, int, int], centre: np.ndarray, radii: np.ndarray) -> list[np.ndarray]:
    """Coordinates (x - c) / r along each axis, as broadcastable open grids."""
    axes = [(np.arange(n, dtype=np.float32) - c) / r for n, c, r in zip(shape, centre, radii)]
    return list(np.ix_(*axes))


def make_anatomy(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A healthy brain as tissue classes, in BraTS voxel axes (x: left-right, y: front-back, z: up).

    Returns:
        uint8 array of `shape` with values BACKGROUND, CSF, GREY, WHITE.
    """
    shape_arr = np.array(shape, dtype=np.float32)
    centre = shape_arr / 2 + rng.uniform(-0.02, 0.02, 3) * shape_arr
    # Brain radii as fractions of the field of view (BraTS: ~140 x 170 x 130 mm brain in 240 x 240 x 155).
    radii = shape_arr * np.array([0.30, 0.36, 0.42]) * rng.uniform(0.92, 1.06, 3)
    u, v, w = _normalised_grid(shape, centre, radii)
    r = np.sqrt(u**2 + v**2 + w**2)  # 1 on the ellipsoid surface
    # Flatten the bottom a little (temporal lobes / cerebellum region is not a sphere).
    r = r * (1 + 0.25 * np.clip(-w - 0.4, 0, None))
    shape_noise = smooth_noise(shape, rng, cells=4)
    gyri_noise = smooth_noise(shape, rng, cells=16)
    r_outer = r * (1 + 0.04 * shape_noise)

    anatomy = np.zeros(shape, dtype=np.uint8)
    brain = r_outer < 1.0
    anatomy[brain] = WHITE
    cortex_depth = 0.13 + 0.09 * gyri_noise  # grey-matter ribbon thickness varies like gyri
    anatomy[brain & (r_outer > 1.0 - cortex_depth)] = GREY
    anatomy[brain & (r_outer > 0.965)] = CSF  # subarachnoid CSF at the surface
    # Interhemispheric fissure: a thin CSF sheet at the midline, upper brain only.
    fissure = (np.abs(u) < 1.2 / radii[0]) & (w > -0.1) & (r_outer > 0.55)
    anatomy[brain & np.broadcast_to(fissure, shape)] = CSF
    # Lateral ventricles: two elongated ellipsoids either side of the midline.
    for side in (-1, 1):
        offset = np.array([side * 0.12, -0.05, 0.12]) * rng.uniform(0.85, 1.15, 3)
        vu, vv, vw = _normalised_grid(shape, centre + offset * radii, radii * np.array([0.10, 0.36, 0.20]) * rng.uniform(0.8, 1.2))
        anatomy[(vu**2 + vv**2 + vw**2) < 1.0] = CSF
    return anatomy


def add_tumour(anatomy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint one tumour (and sometimes a satellite focus) into a copy of `anatomy`.

    Layers, from the centre out, on a noisy distance field so that shapes are irregular:
    necrosis (NECROSIS) < enhancing rim (ENHANCING) < edema (EDEMA). About one tumour in five has
    no enhancing rim (its whole core is NCR/NET, label 1), as in many low-grade gliomas.
    """
    shape = anatomy.shape
    tissue = anatomy.copy()
    brain = anatomy > BACKGROUND
    white = np.argwhere(ndimage.binary_erosion(anatomy == WHITE, iterations=2))
    if len(white) == 0:  # tiny volumes: fall back to any brain voxel
        white = np.argwhere(brain)
    brain_extent = np.ptp(np.argwhere(brain), axis=0).astype(np.float32) + 1

    n_foci = 2 if rng.random() < 0.15 else 1
    for focus in range(n_foci):
        centre = white[rng.integers(len(white))].astype(np.float32)
        scale = rng.uniform(0.12, 0.24) * (0.5 if focus else 1.0)  # edema radius / brain extent
        radii = brain_extent * scale * rng.uniform(0.7, 1.3, 3)
        u, v, w = _normalised_grid(shape, centre, radii)
        distance = np.sqrt(u**2 + v**2 + w**2)
        lumpy = distance * (1 + 0.35 * smooth_noise(shape, rng, cells=6))
        core_radius = rng.uniform(0.35, 0.6)
        necrosis_radius = core_radius * rng.uniform(0.0, 0.7)
        enhancing = rng.random() > 0.2
        edema = (lumpy < 1.0) & brain
        core = (lumpy < core_radius) & brain
        tissue[edema & (tissue != CSF)] = EDEMA  # edema spreads through tissue, not into CSF
        if enhancing:
            tissue[core] = ENHANCING
            tissue[(lumpy < necrosis_radius) & brain] = NECROSIS
        else:
            tissue[core] = NECROSIS
    return tissue


def render_modalities(
    tissue: np.ndarray, rng: np.random.Generator, modalities: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
) -> dict[str, np.ndarray]:
    """Turn tissue classes into MR-like images: contrast, texture, blur, bias field, noise.

    Returns:
        modality name -> int16 array of `tissue.shape`, 0 outside the brain.
    """
    brain = tissue > BACKGROUND
    texture = smooth_noise(tissue.shape, rng, cells=20)
    images = {}
    for name in modalities:
        image = CONTRAST[name][tissue]  # (X, Y, Z) float32
        image = image * (1 + 0.04 * texture)
        image = ndimage.gaussian_filter(image, 0.7, truncate=2.0)  # partial-volume blur
        bias = np.exp(0.12 * smooth_noise(tissue.shape, rng, cells=2))  # smooth multiplicative bias field
        image = image * bias + rng.normal(0.0, 0.02, tissue.shape).astype(np.float32)
        image = np.where(brain, np.clip(image, 0, None), 0)
        images[name] = np.round(image * 1000).astype(np.int16)
    return images


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def write_brats_case(root: Path, index: int, shape: tuple[int, int, int], rng: np.random.Generator, suffix: str) -> Path:
    """Write BraTS20_Training_NNN/BraTS20_Training_NNN_{t1,t1ce,t2,flair,seg}.nii[.gz] under `root`."""
    case_id = f"BraTS20_Training_{index:03d}"
    folder = root / case_id
    folder.mkdir(parents=True)
    tissue = add_tumour(make_anatomy(shape, rng), rng)
    affine = brats_affine(shape)
    for name, image in render_modalities(tissue, rng).items():
        _save(image, affine, folder / f"{case_id}_{name}{suffix}")
    _save(TISSUE_TO_BRATS[tissue], affine, folder / f"{case_id}_seg{suffix}")
    return folder


def write_nfbs_subject(root: Path, index: int, shape: tuple[int, int, int], rng: np.random.Generator, suffix: str) -> Path:
    """Write A000NNNNN/sub-A000NNNNN_ses-NFB3_T1w{,_brain,_brainmask}.nii[.gz] under `root`.

    The head is generated in BraTS voxel axes and stored in NFBS_STORAGE_AXCODES, with a field of
    view scaled like NFBS's 256 x 256 x 192 against BraTS's 240 x 240 x 155.
    """
    subject = f"A{10000000 + index:08d}"
    folder = root / subject
    folder.mkdir(parents=True)
    nfbs_shape = tuple(int(round(s * n / b)) for s, n, b in zip(shape, NFBS_SHAPE, BRATS_SHAPE))
    tissue = make_anatomy(nfbs_shape, rng)
    brain_t1 = render_modalities(tissue, rng, modalities=("t1",))["t1"]
    brain_mask = (tissue > BACKGROUND).astype(np.uint8)
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
    if min(spec.shape) < 16 or spec.cases < 1 or spec.normals < 0:
        raise KitInputError(f"Synthetic data needs a shape of at least 16 voxels per axis and at least one case; got {spec}.")
    suffix = ".nii.gz" if spec.compress else ".nii"
    partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    # One generator per subject, from (seed, kind, index): a subject's content does not depend on
    # how many others are written.
    items = [("brats", i) for i in range(1, spec.cases + 1)] + [("nfbs", i) for i in range(1, spec.normals + 1)]
    for kind, index in tqdm(items, desc="synthetic subjects", disable=not progress):
        case_rng = np.random.default_rng([spec.seed, 0 if kind == "brats" else 1, index])
        if kind == "brats":
            write_brats_case(partial / "brats", index, spec.shape, case_rng, suffix)
        else:
            write_nfbs_subject(partial / "nfbs", index, spec.shape, case_rng, suffix)
    (partial / "SYNTHETIC.json").write_text(json.dumps(asdict(spec), indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(partial, out)
    except OSError:
        # Another process (e.g. a second rank of a multi-process launch) finished first.
        shutil.rmtree(partial, ignore_errors=True)
        if read_spec(out) != spec:
            raise
    return out
