"""File writing that never leaves a half-written file behind (outputs, state, layouts, downloads).

Atomic: the data goes to a temporary file in the same directory and is renamed into place, so a
reader sees the old file or the new one. Durable (for disk copies and state that an air-gapped
workflow depends on): the data is also fsync'ed before the rename and the directory after it, so
a power cut cannot leave a renamed but empty file or forget the rename.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


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


# --------------------------------------------------------------------------------------------------
# Swapping a directory in without a gap, and one writer per target

RENAME_EXCHANGE = 2  # linux/fs.h
NO_EXCHANGE_ENV = "EDGEBUILD_TEST_NO_EXCHANGE"  # tests: take the fallback path, as on a filesystem without it
_AT_FDCWD = -100
_renameat2: Any = None


def exchange_paths(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2 RENAME_EXCHANGE): no moment has either
    name missing. False when the kernel or the filesystem cannot (ENOSYS, EINVAL: old kernels,
    some network filesystems); other failures raise OSError."""
    global _renameat2
    if os.environ.get(NO_EXCHANGE_ENV):
        return False
    if _renameat2 is None:
        libc = ctypes.CDLL(None, use_errno=True)
        _renameat2 = getattr(libc, "renameat2", False)
        if _renameat2:
            _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if not _renameat2:
        return False
    result = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@contextmanager
def locked_directory(path: Path, what: str, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on the directory `path` itself (no lock file to leave behind); a
    second edgebuild writing the same target waits here, after `on_wait` says so."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"waiting for another edgebuild run that is writing {what} ({path})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


PAUSE_ENV = "EDGEBUILD_TEST_PAUSE_AT"


def pause_point(step: str) -> None:
    """A named step where the kill tests stop the process: with EDGEBUILD_TEST_PAUSE_AT=<step> the
    run says so on stderr and sleeps until it is killed. Unset (always, outside tests): nothing."""
    if os.environ.get(PAUSE_ENV) == step:
        sys.stderr.write(f"edgebuild: paused at {step}\n")
        sys.stderr.flush()
        time.sleep(3600)


FILE_NAME_MAX = 255  # bytes of one path component (NAME_MAX on Linux)
PATH_MAX = 4095  # bytes of a whole path (PATH_MAX less the NUL)


def path_length_problem(path: str) -> str | None:
    """Why the kernel would refuse `path` by its length or a NUL (None: it would not), said before it is used."""
    if "\x00" in path:
        return "the path contains a NUL character"
    data = path.encode("utf-8", "surrogateescape")
    if len(data) > PATH_MAX:
        return f"the path is {len(data)} bytes; Linux allows at most {PATH_MAX}"
    longest = max(path.split("/"), key=lambda part: len(part.encode("utf-8", "surrogateescape")))
    size = len(longest.encode("utf-8", "surrogateescape"))
    if size > FILE_NAME_MAX:
        shown = longest if len(longest) <= 60 else f"{longest[:40]}…{longest[-12:]}"
        return f"path component {shown!r} is {size} bytes; Linux allows at most {FILE_NAME_MAX} per name"
    return None
