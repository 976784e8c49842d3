"""Pre-processing BraTS subjects into a slice cache for training (SPEC section 2).

Per subject, streaming one subject at a time so that peak memory does not grow with the data set
(the full BraTS 2020 set is ~50 GB as float32):

1. load the chosen modalities and the label map (`data.load_modalities`, `data.load_label`);
2. find the brain (a brain mask file, else where any modality differs from its background
   constant: `data.brain_mask`) and keep the axial slices that contain some of it;
3. crop every slice to one square in-plane box around the whole brain of the volume;
4. normalise each modality per volume: a low and a high percentile of its brain intensities
   become 0 and 1, clipped to [0, 1], background 0 (`intensity`: the same result for int16,
   float and z-scored files);
5. optionally drop slices whose label map is empty (paper 5.3), or, for the GAN's normals, keep
   only slices far from any tumour;
6. resize to the network size (bilinear with anti-aliasing for images, nearest for labels);
7. optionally apply the paper's enhancement (Eqs. 13-17) to every slice and modality.

Deviation from the paper: the authors crop each slice to its own brain rectangle and resize it,
which stretches small top and bottom slices and changes the aspect ratio from slice to slice.
Here each volume gets one square box, so anatomy keeps its scale and shape across the slices of
a subject, and mapping a prediction back to the voxel grid needs one box per subject.

The cache is a folder `slices-<key>/` (BraTS) or `normals-<key>/` (NFBS) holding one pair of .npy
files per subject and a `manifest.json`; `<key>` hashes the settings and the input files (names, sizes, times), so
changing either builds a new cache. It is built in a temporary folder and renamed into place
when complete: an interrupted build never leaves a cache that looks finished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ganet_lib.config import ExperimentConfig, PreprocessConfig
from ganet_lib.data.cases import (
    BratsCase,
    NfbsSubject,
    axial_slices,
    brain_mask,
    load_label,
    load_modalities,
    load_nfbs,
)
from ganet_lib.data.intensity import brain_from_background, normalise, percentile_scale
from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_folder, fingerprint
from ganet_lib.method.enhance import enhance

CACHE_FORMAT = 2  # bump when the cache's content or layout changes


@dataclass(frozen=True)
class CroppedCase:
    """One pre-processed subject, ready for the cache.

    Slices are in display orientation: ``slice = volume[:, :, z].T``, rows running front to back
    and columns from the patient's right to left (the radiological view of BraTS's LPS axes), so
    ``plt.imshow(slice)`` shows the usual picture.
    """

    images: np.ndarray  # (S, C, size, size) float16 in [0, 1], C the chosen modalities
    labels: np.ndarray  # (S, size, size) uint8, the kit's labels (0/1/2/4, or 0/1 for whole-tumour masks)
    slice_index: np.ndarray  # (S,) int: the axial (z) index of each slice in the original volume
    box: tuple[int, int, int, int]  # row0, row1, col0, col1 of the square crop (may reach outside the slice)


def square_brain_box(brain: np.ndarray, margin: int = 2) -> tuple[int, int, int, int]:
    """The smallest square (row0, row1, col0, col1) around the `brain` pixels of a (S, H, W) stack, plus `margin`.

    The square is centred on the brain's rectangle and may extend outside the slice; `crop_square`
    pads those parts with zeros.
    """
    rows = np.flatnonzero(brain.any(axis=(0, 2)))
    cols = np.flatnonzero(brain.any(axis=(0, 1)))
    if len(rows) == 0:
        raise ValueError("the volume has no brain voxels (every modality is zero everywhere)")
    side = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 + 2 * margin
    row0 = (rows[0] + rows[-1] + 1 - side) // 2
    col0 = (cols[0] + cols[-1] + 1 - side) // 2
    return int(row0), int(row0 + side), int(col0), int(col0 + side)


def crop_square(stack: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop the last two axes of (..., H, W) to `box`, padding parts outside the slice with zeros."""
    row0, row1, col0, col1 = box
    height, width = stack.shape[-2:]
    if row0 >= 0 and col0 >= 0 and row1 <= height and col1 <= width:
        return stack[..., row0:row1, col0:col1]
    out = np.zeros(stack.shape[:-2] + (row1 - row0, col1 - col0), dtype=stack.dtype)
    r0, r1, c0, c1 = max(row0, 0), min(row1, height), max(col0, 0), min(col1, width)
    out[..., r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = stack[..., r0:r1, c0:c1]
    return out


def resize_slices(images: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize (S, C, h, w) images (bilinear, anti-aliased) and (S, h, w) labels (nearest) to size x size."""
    image_tensor = torch.from_numpy(np.ascontiguousarray(images))
    label_tensor = torch.from_numpy(np.ascontiguousarray(labels))[:, None].float()  # (S, 1, h, w)
    if images.shape[-2:] != (size, size):
        image_tensor = F.interpolate(
            image_tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        label_tensor = F.interpolate(label_tensor, size=(size, size), mode="nearest-exact")
    return image_tensor.clamp_(0, 1).numpy(), label_tensor[:, 0].to(torch.uint8).numpy()


def tumour_free_slices(label: np.ndarray, candidates: np.ndarray, margin: int) -> np.ndarray:
    """The `candidates` (axial indices) of a (Z, H, W) label stack with no tumour and at least
    `margin` tumour-free slices between them and the nearest tumour slice."""
    tumour = np.flatnonzero(label.any(axis=(1, 2)))
    if len(tumour) == 0:
        return candidates
    distance = np.abs(candidates[:, None] - tumour[None, :]).min(axis=1)  # (S,) slices to the nearest tumour slice
    return candidates[distance > margin]


def preprocess_case(
    volumes: list[np.ndarray],
    label: np.ndarray | None,
    settings: PreprocessConfig,
    brain: np.ndarray | None = None,
    normal_margin: int | None = None,
) -> CroppedCase:
    """Steps 2-7 of the module docstring for one subject.

    Args:
        volumes: the chosen modalities, each (X, Y, Z) of any real dtype (as from
            `data.load_modalities(case, dtype=None)`).
        label: (X, Y, Z) uint8 in the kit's labels, or None (then no slice is dropped as empty).
        settings: the pre-processing settings.
        brain: (X, Y, Z) bool, the subject's brain (`data.brain_mask`); None: where any volume
            differs from its background constant.
        normal_margin: keep only the tumour-free slices at least this many slices away from any
            tumour slice (the GAN's normals from tumour subjects; needs `label`), instead of the
            settings' `drop_empty_slices`.
    """
    stacks = [axial_slices(v) for v in volumes]  # C x (Z, H, W) views
    brain = axial_slices(brain if brain is not None else brain_from_background(volumes))  # (Z, H, W)
    keep = np.flatnonzero(brain.sum(axis=(1, 2)) >= settings.min_brain_pixels)  # axial slices with brain
    box = square_brain_box(brain[keep])
    # Per-volume normalisation of each modality, from the brain voxels of all kept slices (step 4),
    # before any slice is dropped: the kept slices of a subject share one intensity scale.
    scales = [
        percentile_scale(stack[keep][brain[keep]], settings.low_percentile, settings.clip_percentile)
        for stack in stacks
    ]
    labels = crop_square(axial_slices(label)[keep], box) if label is not None else None
    if normal_margin is not None:
        if label is None:
            raise ValueError("tumour-free slices need the label map")
        keep = tumour_free_slices(axial_slices(label), keep, normal_margin)
        labels = None  # all zero below
    elif settings.drop_empty_slices and labels is not None:
        tumour = labels.any(axis=(1, 2))  # (S,)
        keep, labels = keep[tumour], labels[tumour]
    if labels is None:
        labels = np.zeros((len(keep), box[1] - box[0], box[3] - box[2]), np.uint8)
    brain_box = crop_square(brain[keep], box)  # (S, h, w)
    images = np.empty((len(keep), len(stacks), box[1] - box[0], box[3] - box[2]), np.float32)  # (S, C, h, w)
    for channel, (stack, (offset, gain)) in enumerate(zip(stacks, scales)):
        normalise(crop_square(stack[keep], box), brain_box, offset=offset, gain=gain, out=images[:, channel])  # step 4
    images, labels = resize_slices(images, labels, settings.image_size)
    if settings.enhance:
        images = enhance(images, settings.enhance_lambda)  # per slice and modality, Eqs. (13)-(17)
    return CroppedCase(images.astype(np.float16), labels, keep.astype(np.int32), box)


@dataclass(frozen=True)
class CacheSource:
    """One subject to pre-process: its id, its files (for the cache key) and how to read it."""

    subject_id: str
    files: tuple[Path, ...]
    read: Callable[[], tuple[list[np.ndarray], np.ndarray | None, np.ndarray]]  # -> (volumes, label or None, brain)
    channels: tuple[str, ...]  # what each channel of its slices is (for the cache key and manifest)
    labels: str = ""  # how its label file is read (`labels.CONVENTIONS`): part of the cache key


def brats_sources(cases: list[BratsCase], only: str | None = None) -> list[CacheSource]:
    """BraTS subjects: the chosen modalities in the files' own dtype (only the crop is converted),
    the label and the brain. `only` keeps one modality's channel (the brain still comes from all)."""

    def reader(case: BratsCase):
        def read():
            volumes, _ = load_modalities(case, dtype=None)
            brain = brain_mask(case, volumes)
            if only is not None:
                volumes = [volumes[case.modalities.index(only)]]
            return volumes, (load_label(case) if case.label is not None else None), brain

        return read

    sources = []
    for c in cases:
        files = tuple(
            p for p in [*(c.images[m] for m in c.modalities if m in c.images), c.label, c.brain_mask] if p is not None
        )
        sources.append(
            CacheSource(
                c.case_id, files, read=reader(c), channels=(only,) if only else c.modalities, labels=c.label_convention
            )
        )
    return sources


def nfbs_sources(subjects: list[NfbsSubject]) -> list[CacheSource]:
    """NFBS subjects: the skull-stripped T1w, reoriented to BraTS's axes; no label."""

    def read(subject: NfbsSubject):
        volume = load_nfbs(subject)
        return [volume], None, brain_from_background([volume], [subject.brain])

    return [CacheSource(s.subject_id, (s.brain,), (lambda s=s: read(s)), ("t1",)) for s in subjects]


def cache_key(sources: list[CacheSource], settings: PreprocessConfig, extra: dict | None = None) -> str:
    """A hash of everything the cache's content depends on: settings, format, channels, input files
    (and `extra`: the label convention, the normals' margin)."""
    files = []
    for source in sources:
        for path in source.files:
            files.append((source.subject_id, Path(path).name, fingerprint(path), source.channels, source.labels))
    payload = json.dumps(
        {"format": CACHE_FORMAT, "settings": dataclasses.asdict(settings), "files": files, "extra": extra or {}},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def build_slice_cache(
    cases: list[BratsCase], cache_root: Path | str, settings: PreprocessConfig, progress: bool = True
) -> Path:
    """Pre-process BraTS `cases` into `cache_root/slices-<key>/`, or reuse it if already complete.

    Returns:
        The cache folder (read it with `SliceCache`): images (one channel per chosen modality) and labels.
    """
    return build_cache(brats_sources(cases), Path(cache_root), prefix="slices", settings=settings, progress=progress)


def build_normal_cache(
    subjects: list[NfbsSubject], cache_root: Path | str, settings: PreprocessConfig, progress: bool = True
) -> Path:
    """Pre-process NFBS `subjects` into `cache_root/normals-<key>/` (1-channel T1 slices, all-zero labels).

    The same crop, normalisation, resizing and enhancement as the BraTS slices, so that the GAN
    learns normal tissue exactly as the segmentation network's T1 channel shows it.
    """
    return build_cache(nfbs_sources(subjects), Path(cache_root), prefix="normals", settings=settings, progress=progress)


def build_tumour_free_cache(
    cases: list[BratsCase], cache_root: Path | str, settings: PreprocessConfig, margin: int, progress: bool = True
) -> Path:
    """The GAN's normals without NFBS (`gan.normals: tumour-free-slices`): the T1 slices of `cases`
    (training subjects only; the caller chooses them) with no tumour and at least `margin` slices
    from any tumour slice, into `cache_root/tumourfree-<key>/` (1 channel, all-zero labels).

    T1 is cropped and normalised exactly as in the segmentation cache (the brain and the intensity
    scale come from the whole subject), so the GAN sees what the U-Net's T1 channel shows.
    """
    if any("t1" not in c.modalities for c in cases):
        raise KitInputError(
            "gan.normals: tumour-free-slices takes the GAN's normal slices from T1, which data.modalities leaves out; "
            "add t1."
        )
    return build_cache(
        brats_sources(cases, only="t1"),
        Path(cache_root),
        prefix="tumourfree",
        settings=settings,
        progress=progress,
        extra={"margin": margin},
        normal_margin=margin,
    )


def build_cache(
    sources: list[CacheSource],
    cache_root: Path,
    prefix: str,
    settings: PreprocessConfig,
    progress: bool = True,
    extra: dict | None = None,
    normal_margin: int | None = None,
) -> Path:
    """Pre-process `sources` into `cache_root/<prefix>-<key>/`, or reuse it if already complete.

    While one subject is processed, the next is read from disk in a background thread
    (decompression releases the GIL), so at most two subjects are in memory at once, whatever
    the number of subjects.
    """
    final = cache_root / f"{prefix}-{cache_key(sources, settings, extra)}"
    if (final / "manifest.json").is_file():
        return final
    # finished elsewhere: another process (e.g. a second rank) finished the same cache first
    with atomic_folder(final, finished_elsewhere=lambda: (final / "manifest.json").is_file()) as partial:
        entries = _fill_cache(sources, partial, settings=settings, progress=progress, normal_margin=normal_margin)
        channels = sources[0].channels if sources else ()
        manifest = {
            "format": CACHE_FORMAT,
            "settings": dataclasses.asdict(settings),
            "channels": list(channels),
            "extra": extra or {},
            "cases": entries,
        }
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=1))  # written last: marks completion
    return final


def _fill_cache(
    sources: list[CacheSource],
    folder: Path,
    settings: PreprocessConfig,
    progress: bool,
    normal_margin: int | None = None,
) -> list[dict]:
    """Write each subject's .npy pair into `folder`; return the manifest entries."""
    entries = []
    with ThreadPoolExecutor(max_workers=1) as reader:
        upcoming = reader.submit(sources[0].read) if sources else None
        for k, source in enumerate(tqdm(sources, desc="pre-process subjects", unit="subject", disable=not progress)):
            volumes, label, brain = upcoming.result()
            upcoming = reader.submit(sources[k + 1].read) if k + 1 < len(sources) else None
            try:
                result = preprocess_case(volumes, label, settings=settings, brain=brain, normal_margin=normal_margin)
            except ValueError as exc:
                raise KitInputError(
                    f"Subject {source.subject_id} cannot be pre-processed: {exc}; check it with `ganet validate`."
                ) from exc
            del volumes, label, brain
            np.save(folder / f"{source.subject_id}_images.npy", result.images)
            np.save(folder / f"{source.subject_id}_labels.npy", result.labels)
            entries.append(
                {
                    "case_id": source.subject_id,
                    "slices": len(result.labels),
                    "slice_index": result.slice_index.tolist(),
                    "box": list(result.box),
                }
            )
    return entries


class SliceCache:
    """The slices of a built cache, memory-mapped, optionally restricted to some subjects.

    ``cache[i]`` is ``(image, label)``: (C, size, size) float32 and (size, size) int64; `channels`
    names the C channels.
    """

    def __init__(self, folder: Path | str, case_ids: list[str] | None = None):
        self.folder = Path(folder)
        manifest = json.loads((self.folder / "manifest.json").read_text())
        self.settings = manifest["settings"]
        self.channels = tuple(manifest["channels"])
        wanted = None if case_ids is None else set(case_ids)
        self.cases = [c for c in manifest["cases"] if wanted is None or c["case_id"] in wanted]
        self._images = [np.load(self.folder / f"{c['case_id']}_images.npy", mmap_mode="r") for c in self.cases]
        self._labels = [np.load(self.folder / f"{c['case_id']}_labels.npy", mmap_mode="r") for c in self.cases]
        # (N, 2) table of (subject position, slice position) for every slice
        self.index = np.array(
            [(k, s) for k, c in enumerate(self.cases) for s in range(c["slices"])], dtype=np.int64
        ).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        case, position = self.index[i]
        return np.asarray(self._images[case][position], dtype=np.float32), np.asarray(
            self._labels[case][position], dtype=np.int64
        )


def gan_preprocess(config: ExperimentConfig) -> PreprocessConfig:
    """The pre-processing of the GAN's slices: the run's, with the enhancement as `gan.enhance_input` says."""
    # The whole config: the answer combines two sections (preprocess, gan).
    return dataclasses.replace(config.preprocess, enhance=config.gan.enhance_input)
