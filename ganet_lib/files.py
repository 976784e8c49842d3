"""Writing files and folders so that a reader never sees half of one: write a temporary sibling,
then rename it into place (a rename within one folder is atomic). A failure removes the sibling."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _sibling(path: Path) -> Path:
    """`.NAME.partial-PID.SUFFIXES` beside `path`: hidden, one per process, and with the suffixes of
    `path`, so that writers that choose the format by suffix (nibabel, matplotlib) still do."""
    base, dot, suffixes = path.name.partition(".")
    return path.with_name(f".{base}.partial-{os.getpid()}{dot}{suffixes}")


@contextmanager
def atomic_file(path: Path | str) -> Iterator[Path]:
    """A temporary name to write `path` under; renamed onto `path` when the block succeeds.

    Example: `with atomic_file(out) as partial: nib.save(image, partial)`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _sibling(path)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def atomic_folder(
    path: Path | str, replace: bool = False, finished_elsewhere: Callable[[], bool] | None = None
) -> Iterator[Path]:
    """A fresh temporary folder to fill; renamed onto `path` when the block succeeds.

    Args:
        replace: an existing `path` is removed first (otherwise it must be absent or empty).
        finished_elsewhere: when the rename fails because another process (a second rank of a
            distributed launch) put a folder at `path` first, this says whether that folder is the
            finished result: then this process's copy is dropped, else the error is raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _sibling(path)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        try:
            if path.exists() and replace:
                shutil.rmtree(path)
            elif path.exists():
                path.rmdir()  # empty, or an OSError: not ours to remove
            os.replace(partial, path)
        except OSError:
            if finished_elsewhere is None or not finished_elsewhere():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder and an atomic rename."""
    with atomic_file(path) as partial:
        partial.write_text(text)
    return Path(path)


def atomic_write_csv(path: Path | str, rows: list[dict]) -> Path:
    """Write `rows` (dicts with the same keys) as CSV, atomically; the first row's keys are the header."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


FINGERPRINT_BYTES = 1 << 16  # read from each end of an input file


def fingerprint(path: Path | str) -> str:
    """A file's size and a hash of its first and last 64 KiB: equal for a copy (`cp -r` of a run folder
    handed to a class keeps its caches valid, which modification times would not), different for a
    rewritten NIfTI (its header, and a gzip stream's own header and checksum, sit at the two ends)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            handle.seek(max(size - FINGERPRINT_BYTES, FINGERPRINT_BYTES))
            digest.update(handle.read())
    return digest.hexdigest()[:20]
