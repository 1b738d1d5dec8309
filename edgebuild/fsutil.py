"""File writing that never leaves a half-written file behind (outputs, state, layouts, downloads).

Atomic: the data goes to a temporary file in the same directory and is renamed into place, so a
reader sees the old file or the new one. Durable (for disk copies and state that an air-gapped
workflow depends on): the data is also fsync'ed before the rename and the directory after it, so
a power cut cannot leave a renamed but empty file or forget the rename.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO


def fsync_dir(path: Path) -> None:
    """Make the renames inside `path` durable: without it a power cut may forget a finished rename."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(fh: IO[bytes], tmp: str | os.PathLike[str], path: Path, *, sync_dir: bool = True) -> None:
    """Close the temporary file `fh` (written at `tmp`) and rename it to `path`, durably.

    The directory fsync can be left to the caller (`sync_dir=False`) when it batches renames."""
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, *, durable: bool = False) -> Path:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                commit_file(fh, tmp, path)
        if not durable:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
