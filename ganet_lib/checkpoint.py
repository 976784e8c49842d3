"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`.

A checkpoint holds only tensors, numbers, strings, lists and dicts (model and optimiser state
dicts, counters, RNG states as tensors, the resolved config as JSON text). `weights_only=True`
refuses anything else, so loading a checkpoint can never run code hidden in a pickle; a file that
needs arbitrary unpickling is rejected with a clear error.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_file, atomic_write_csv
from ganet_lib.run import TrainingFolder


def save_checkpoint(payload: dict[str, Any], path: Path | str) -> Path:
    """torch.save to a temporary sibling, then rename: a crash never leaves half a checkpoint."""
    with atomic_file(path) as partial:
        torch.save(payload, partial)
    return Path(path)


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load a checkpoint on the CPU with `weights_only=True`.

    Raises:
        KitInputError: missing, unreadable, or needing arbitrary unpickling.
    """
    path = Path(path)
    if not path.is_file():
        raise KitInputError(f"Checkpoint '{path}' does not exist; train first (or check the run folder).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise KitInputError(
            f"Checkpoint '{path}' holds objects that need arbitrary unpickling, which the kit refuses for safety; "
            "use a checkpoint written by this kit."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise KitInputError(
            f"Checkpoint '{path}' cannot be read ({exc}); it is truncated or not a PyTorch file."
        ) from exc


def load_for_resume(path: Path | str, settings: str, resume: bool, say=print) -> dict[str, Any] | None:
    """The checkpoint at `path` to continue from, or None: when `resume` is off, when there is no
    file, or when it was made with other settings (then `say` tells why training starts over)."""
    path = Path(path)
    if not resume or not path.is_file():
        return None
    checkpoint = load_checkpoint(path)
    if checkpoint.get("settings") != settings:
        say(f"the settings differ from those of {path}; training from scratch instead of resuming")
        return None
    return checkpoint


def training_state(parts: dict[str, Any], unwrap=lambda part: part) -> dict[str, Any]:
    """The state dicts of `parts` (networks, optimisers, schedulers, each under its checkpoint key)
    and the torch RNG state: what a trainer saves every epoch. `unwrap` strips Accelerate's wrapper
    from the networks (`accelerator.unwrap_model`); optimisers and schedulers are saved as they are."""
    return {
        **{
            key: (unwrap(part) if isinstance(part, torch.nn.Module) else part).state_dict()
            for key, part in parts.items()
        },
        "rng_torch": torch.get_rng_state(),
    }


def restore_training(checkpoint: dict[str, Any], parts: dict[str, Any], counters: dict[str, Any]) -> dict[str, Any]:
    """Load what `training_state` saved back into `parts` and the RNG; returns the checkpoint's
    values of the keys of `counters` (epoch, best score, history, ...)."""
    for key, part in parts.items():
        part.load_state_dict(checkpoint[key])
    torch.set_rng_state(checkpoint["rng_torch"])
    return {key: checkpoint[key] for key in counters}


def save_epoch(checkpoint: dict[str, Any], folder: TrainingFolder, improved: bool, history: list[dict]) -> None:
    """A trainer's files after an epoch: the last checkpoint, the best one when the validation score
    improved, and the history (one row per epoch so far)."""
    save_checkpoint(checkpoint, folder.last)
    if improved:
        save_checkpoint(checkpoint, folder.best)
    atomic_write_csv(folder.history, history)
