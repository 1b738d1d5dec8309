"""Split a disk copy into tar archives of at most `archiveSize` GB, and unpack them safely.

Blobs go first and the small files that make the copy usable (index.json, oci-layout, edgebuild/)
go into the last archive, so a set of archives that is only partly carried over is recognisably
incomplete. A blob bigger than the limit gets an archive of its own (as oc-mirror does without
--strict-archive). Unpacking accepts only regular files and directories with relative names.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from ..errors import RegistryError

ARCHIVE_DIR = "archives"
UNPACK_DIR = "unpacked"
_PREFIX = "mirror_"


def _layout_files(root: Path) -> tuple[list[Path], list[Path]]:
    blobs = sorted(p for p in (root / "blobs" / "sha256").iterdir() if p.is_file() and not p.name.startswith("."))
    meta = [root / "oci-layout", root / "index.json"]
    meta += sorted(p for p in (root / "edgebuild").iterdir() if p.is_file() and not p.name.startswith("."))
    return blobs, meta


def write_archives(root: Path, size_gb: float) -> list[Path]:
    """Pack the layout at `root` into root/archives/mirror_NNNNNN.tar files; returns them in order."""
    limit = int(size_gb * 1_000_000_000)
    out_dir = root / ARCHIVE_DIR
    out_dir.mkdir(exist_ok=True)
    for old in out_dir.glob(f"{_PREFIX}*.tar"):
        old.unlink()
    blobs, meta = _layout_files(root)
    groups: list[list[Path]] = [[]]
    used = 0
    for path in blobs:
        size = path.stat().st_size + 1024
        if groups[-1] and used + size > limit:
            groups.append([])
            used = 0
        groups[-1].append(path)
        used += size
    groups[-1].extend(meta)
    written = []
    for number, group in enumerate(groups, 1):
        target = out_dir / f"{_PREFIX}{number:06d}.tar"
        tmp = target.with_suffix(".tar.part")
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in group:
                tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
        os.replace(tmp, target)
        written.append(target)
    return written


def find_archives(root: Path) -> list[Path]:
    found = sorted(root.glob(f"{_PREFIX}*.tar")) + sorted((root / ARCHIVE_DIR).glob(f"{_PREFIX}*.tar"))
    return found


def unpack_archives(root: Path) -> Path:
    """Extract every archive of `root` into root/unpacked (a work dir) and return that layout root."""
    target = root / UNPACK_DIR
    target.mkdir(exist_ok=True)
    for archive in find_archives(root):
        with tarfile.open(archive, "r") as tar:
            for member in tar:
                name = member.name
                if name.startswith("/") or ".." in Path(name).parts or not (member.isfile() or member.isdir()):
                    raise RegistryError(f"{archive}: refusing unsafe member {name!r}",
                                        hint="archives must come from `edgebuild mirror --to file://DIR`")
                if member.isdir():
                    (target / name).mkdir(parents=True, exist_ok=True)
                    continue
                dest = target / name
                if dest.is_file() and dest.stat().st_size == member.size:
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                tmp = dest.with_name(f".{dest.name}.part")
                with source, tmp.open("wb") as fh:
                    while chunk := source.read(1 << 20):
                        fh.write(chunk)
                os.replace(tmp, dest)
    return target
