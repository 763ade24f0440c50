"""Files replaced whole or not at all: the journal and the runner's checkpoint.

A file is written under a temporary name beside its final path, flushed to disk, and renamed
onto the path only when complete (a rename within one folder is atomic on POSIX). A failure
at any point (a full disk, a killed process) leaves whatever was at the path before, byte for
byte, and removes the temporary file and what DuckDB left beside it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path, tag: str) -> Iterator[Path]:
    """Yield the temporary path to write; rename it onto ``path`` when the block succeeds.

    ``tag`` makes the temporary name specific to the writer (a run id), so two writers of
    different runs never share one. Exceptions propagate after the clean-up."""
    partial = path.with_name(f".{path.name}.{tag}.partial")
    remove_partial(partial)
    try:
        yield partial
        sync(partial)
        os.replace(partial, path)
        sync(path.parent)
    except BaseException:
        remove_partial(partial)
        raise


def remove_partial(partial: Path) -> None:
    """Remove a temporary file and DuckDB's files beside it (its WAL and spill folder)."""
    for extra in (partial, partial.with_name(partial.name + ".wal")):
        extra.unlink(missing_ok=True)
    spill = partial.with_name(partial.name + ".tmp")
    if spill.is_dir():
        shutil.rmtree(spill, ignore_errors=True)


def sync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, so a rename never outruns its data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
