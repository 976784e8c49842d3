"""Where the brain is, and one intensity scale for every way MRI volumes are stored.

Brain-tumour volumes arrive as int16 scanner values, raw float32, or z-scored floats (negative
values; the background a constant that need not be 0, or 0 with brain values on both sides of
it). Two questions must have the same answer in each:

1. **Which voxels are brain?** A `*brainmask*` file beside the images, when there is one, says
   it. Otherwise the data is skull-stripped (BraTS and NFBS are) and everything outside the brain
   holds one constant: the value that fills most of the volume's outer faces. Brain = any chosen
   modality differs from its background constant.
2. **What does an intensity mean?** MR intensities have no absolute unit, and z-scoring is an
   affine change (v -> (v - mean) / sd), so the scale must not depend on offset or gain: each
   modality maps its brain's `low_percentile` to 0 and `high_percentile` to 1, clipped to [0, 1];
   the background is 0. Any affine rescaling of a volume (int16, float, z-scored) gives the same
   normalised brain, up to the int16 rounding.

Deviation from the paper: the authors min-max scale each slice (background included). That keeps
0 as the darkest value only when the background is 0, and it changes a tissue's value from slice to
slice; a per-volume, per-modality percentile scale does neither.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganet_lib.errors import KitInputError

BACKGROUND_SHARE = 0.5  # the background constant must fill at least half of the outer faces


def outer_faces(volume: np.ndarray) -> np.ndarray:
    """The voxels on the six faces of a 3D volume, as one flat array."""
    return np.concatenate([volume[[0, -1]].ravel(), volume[:, [0, -1]].ravel(), volume[:, :, [0, -1]].ravel()])


def background_value(volume: np.ndarray, source: str | Path = "the volume") -> float:
    """The constant outside a skull-stripped brain: the value filling most of the outer faces.

    Raises:
        KitInputError: no value fills `BACKGROUND_SHARE` of the faces (the volume is not
            skull-stripped, or its background is noisy); the fix is a brain mask file.
    """
    values, counts = np.unique(outer_faces(volume), return_counts=True)
    best = int(np.argmax(counts))
    if counts[best] < BACKGROUND_SHARE * counts.sum():
        raise KitInputError(
            f"'{source}' has no constant background on its outer faces (the most common value fills "
            f"{counts[best] / counts.sum():.0%}), "
            "so the kit cannot tell brain from background; put a brain mask named like '<case>_brainmask.nii.gz' "
            "beside the images "
            "(the data must be skull-stripped)."
        )
    return float(values[best])


def brain_from_background(volumes: list[np.ndarray], sources: list[str | Path] | None = None) -> np.ndarray:
    """(X, Y, Z) bool: voxels where any of the co-registered `volumes` differs from its background constant."""
    sources = sources or ["the volume"] * len(volumes)
    brain = np.zeros(volumes[0].shape, bool)
    for volume, source in zip(volumes, sources):
        brain |= volume != background_value(volume, source)
    return brain


def percentile_scale(values: np.ndarray, low_percentile: float, high_percentile: float) -> tuple[float, float]:
    """(offset, gain) mapping the `low_percentile` of `values` to 0 and the `high_percentile` to 1.

    An empty or constant set of values gives gain 0 (the modality becomes all zeros).
    """
    if values.size == 0:
        return 0.0, 0.0
    low, high = np.percentile(values, (low_percentile, high_percentile))
    return float(low), (1.0 / float(high - low) if high > low else 0.0)


def normalise(
    volume: np.ndarray, brain: np.ndarray, offset: float, gain: float, out: np.ndarray | None = None
) -> np.ndarray:
    """(volume - offset) * gain clipped to [0, 1] inside `brain`, 0 outside; float32."""
    if out is None:
        out = np.empty(volume.shape, np.float32)
    np.subtract(volume, offset, out=out, casting="unsafe")
    out *= gain
    np.clip(out, 0.0, 1.0, out=out)
    out[~brain] = 0.0
    return out
