"""Delta archives of a disk copy (oc-mirror v1's mirror_seqN), and reading them without unpacking.

Each mirror-to-disk run with `archiveSize` writes the next *sequence* N of DIR:
archives/mirror_seq<N>_<NNNNNN>.tar, holding only the blobs no earlier sequence of DIR holds, so
only what changed is carried across the air gap. Sequence 1 holds everything. Blobs go first and
the small files that make a copy usable (oci-layout, index.json, edgebuild/*.json) go into the
last archive of the sequence, so a sequence only partly carried over is recognisably incomplete.
A blob bigger than the limit gets an archive of its own (as oc-mirror does without
--strict-archive). Earlier sequences are never touched.

edgebuild/archives.json (in DIR, and in every sequence's last archive) records which sequence
holds which blob and which repositories use it: disk-to-mirror needs that to push a sequence
whose blobs partly went over with an earlier one (mount them at the destination, or say which
sequence to push first).

Reading: the tar members are indexed (headers only) and blobs are streamed straight from the
archives, so `--from` needs no second copy of the data on disk; only the metadata of the newest
sequence is extracted (into DIR/unpacked, or a temporary directory when DIR is read-only).
Only regular files and directories with relative names are accepted.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RegistryError
from ..fsutil import commit_file, fsync_dir, write_atomic
from .layout import CHUNK, LayoutEndpoint, split_ref_name
from .manifest import sha256_digest
from .retry import RetryPolicy

ARCHIVE_DIR = "archives"
UNPACK_DIR = "unpacked"
RECORD = "edgebuild/archives.json"
RECORD_VERSION = 1
_SEQ_NAME = re.compile(r"^mirror_seq([1-9][0-9]*)_([0-9]{6})\.tar$")
_LEGACY_NAME = re.compile(r"^mirror_([0-9]{6})\.tar$")  # whole-layout archives of earlier edgebuild versions
_BLOB_MEMBER = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_TAR_OVERHEAD = 1024  # header and padding per member, so an archive stays under the limit
_HINT = "archives must come from `edgebuild mirror --to file://DIR`"


def archive_name(sequence: int, part: int) -> str:
    return f"mirror_seq{sequence}_{part:06d}.tar"


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One archive found in a directory; legacy whole-layout archives are sequence 0."""

    path: Path
    sequence: int
    part: int


def find_archives(root: Path) -> list[ArchiveFile]:
    """The archives in `root` and root/archives, ordered by sequence, then part."""
    found: dict[str, ArchiveFile] = {}
    for folder in (root, root / ARCHIVE_DIR):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if match := _SEQ_NAME.match(path.name):
                found.setdefault(path.name, ArchiveFile(path, int(match[1]), int(match[2])))
            elif match := _LEGACY_NAME.match(path.name):
                found.setdefault(path.name, ArchiveFile(path, 0, int(match[1])))
    return sorted(found.values(), key=lambda a: (a.sequence, a.part))


# ------------------------------------------------------------------------------------ the record

def empty_record() -> dict[str, Any]:
    return {"version": RECORD_VERSION, "id": str(uuid.uuid4()), "sequences": [], "blobs": {}}


def read_record(root: Path) -> dict[str, Any] | None:
    """edgebuild/archives.json of a layout (or of unpacked metadata), None when there is none."""
    path = root / RECORD
    if not path.is_file():
        return None
    try:
        return _checked_record(json.loads(path.read_text()), str(path))
    except ValueError as exc:
        raise RegistryError(f"{path} is not valid JSON: {exc}",
                            hint="the archive record is damaged; restore it from the last archive of the newest "
                                 "sequence (it holds a copy)") from None


def _checked_record(body: Any, origin: str) -> dict[str, Any]:
    if (not isinstance(body, dict) or body.get("version") != RECORD_VERSION
            or not isinstance(body.get("sequences"), list) or not isinstance(body.get("blobs"), dict)):
        raise RegistryError(f"{origin}: not an archive record this edgebuild understands", hint=_HINT)
    return body


def blob_sequence(record: dict[str, Any] | None, digest: str) -> int | None:
    """The sequence whose archives carried `digest`, if the record knows it."""
    entry = (record or {}).get("blobs", {}).get(digest)
    return int(entry["sequence"]) if isinstance(entry, dict) and "sequence" in entry else None


def blob_repositories(record: dict[str, Any] | None, digest: str) -> list[str]:
    """Layout repositories whose images use `digest` (where a destination may already hold it)."""
    entry = (record or {}).get("blobs", {}).get(digest)
    return list(entry.get("repositories", [])) if isinstance(entry, dict) else []


def _users_of_blobs(layout: LayoutEndpoint) -> dict[str, set[str]]:
    """{blob digest: layout repositories of the images that use it}, from index.json down."""
    users: dict[str, set[str]] = {}
    for name, digest in layout.refs().items():
        repository, _ = split_ref_name(name)
        pending, seen = [digest], set()
        while pending:
            current = pending.pop()
            if current in seen or layout.blob_size(current) is None:
                continue
            seen.add(current)
            manifest = layout.get_manifest(repository, current)
            users.setdefault(current, set()).add(repository)
            for desc in manifest.blobs:
                users.setdefault(desc.digest, set()).add(repository)
            pending.extend(child.digest for child in manifest.children)
    return users


# ------------------------------------------------------------------------------------ writing

@dataclass(slots=True)
class SequenceWritten:
    """What write_archives did: the new sequence (0 when nothing changed) and its files."""

    sequence: int
    archives: list[Path] = field(default_factory=list)
    new_blobs: int = 0
    new_bytes: int = 0
    previous: int = 0  # the last sequence written before this run


def _layout_blobs(root: Path) -> dict[str, Path]:
    folder = root / "blobs" / "sha256"
    return {f"sha256:{p.name}": p for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")}


def _metadata_files(root: Path) -> list[Path]:
    meta = [root / "oci-layout", root / "index.json"]
    meta += sorted(p for p in (root / "edgebuild").iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.name != Path(RECORD).name)
    return meta


def _member_bytes(archive: Path, name: str) -> bytes | None:
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            if member.name == name and member.isfile():
                source = tar.extractfile(member)
                return source.read() if source else None
    return None


def _reconcile(root: Path, record: dict[str, Any] | None) -> dict[str, Any]:
    """Bring the record in line with archives/: a sequence written in full by a run that stopped
    before saving the record is adopted (its last archive holds the record, also when DIR's own
    copy was lost); the parts of one that never finished are removed, so its number is written again."""
    record = record or empty_record()
    fresh = not record["sequences"]
    recorded = {int(s["sequence"]) for s in record["sequences"]}
    last = max(recorded, default=0)
    by_sequence: dict[int, list[ArchiveFile]] = {}
    for found in find_archives(root):
        if found.sequence > last and found.path.parent == root / ARCHIVE_DIR:
            by_sequence.setdefault(found.sequence, []).append(found)
    for sequence in sorted(by_sequence):
        parts = by_sequence[sequence]
        try:
            data = _member_bytes(parts[-1].path, RECORD)
            adopted = _checked_record(json.loads(data), str(parts[-1].path)) if data else None
        except (tarfile.TarError, ValueError, RegistryError, OSError):
            adopted = None
        if (adopted is not None and (fresh or adopted.get("id") == record["id"])
                and [int(s["sequence"]) for s in adopted["sequences"]][-1:] == [sequence]):
            record, fresh = adopted, False
            continue
        for part in parts:
            part.path.unlink()
    return record


def _pack_groups(blobs: list[tuple[str, Path, int]], limit: int) -> list[list[tuple[str, Path, int]]]:
    """Blobs over the limit one per archive, then the others filled up to the limit in order, so a
    big blob does not cut the run of small ones into more archives than needed."""
    big = [[item] for item in blobs if item[2] + _TAR_OVERHEAD > limit]
    groups: list[list[tuple[str, Path, int]]] = [[]]
    used = 0
    for item in blobs:
        size = item[2] + _TAR_OVERHEAD
        if size > limit:
            continue
        if groups[-1] and used + size > limit:
            groups.append([])
            used = 0
        groups[-1].append(item)
        used += size
    return big + groups


def write_archives(root: Path, size_gb: float) -> SequenceWritten:
    """Write the next sequence of `root`'s archives: the blobs no earlier sequence holds, then the
    metadata. Writes nothing (sequence 0) when no blob is new and index.json and plan.json are as
    the last sequence left them."""
    limit = max(1, int(size_gb * 1_000_000_000))
    out_dir = root / ARCHIVE_DIR
    out_dir.mkdir(exist_ok=True)
    for stale in out_dir.glob("*.tar.part"):
        stale.unlink()
    for legacy in find_archives(root):
        if legacy.sequence == 0 and legacy.path.parent == out_dir:
            legacy.path.unlink()  # whole-layout archives of an earlier version: sequence 1 replaces them
    on_disk = read_record(root)
    record = _reconcile(root, on_disk)
    if record is not on_disk and record["sequences"]:
        write_atomic(root / RECORD, _record_bytes(record), durable=True)  # adopted a sequence written in full
    previous = max((int(s["sequence"]) for s in record["sequences"]), default=0)
    sequence = previous + 1
    content = sha256_digest((root / "index.json").read_bytes() + (root / "edgebuild" / "plan.json").read_bytes())
    held: dict[str, Any] = record["blobs"]
    new = [(digest, path, path.stat().st_size) for digest, path in _layout_blobs(root).items()
           if digest not in held]
    if previous and not new and record["sequences"][-1].get("content") == content:
        return SequenceWritten(0, previous=previous)

    groups = _pack_groups(new, limit)
    names = [archive_name(sequence, n) for n in range(1, len(groups) + 1)]
    for digest, _path, _size in new:
        held[digest] = {"sequence": sequence, "repositories": []}
    for digest, users in _users_of_blobs(LayoutEndpoint(root, create=False, retry=RetryPolicy())).items():
        if digest in held:
            held[digest]["repositories"] = sorted(set(held[digest].get("repositories", [])) | users)
    record["sequences"].append({"sequence": sequence, "archives": names, "blobs": len(new),
                                "bytes": sum(size for _, _, size in new), "content": content,
                                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    record_bytes = _record_bytes(record)

    written = []
    for number, (name, group) in enumerate(zip(names, groups, strict=True), 1):
        files = [(path.relative_to(root).as_posix(), path) for _, path, _ in group]
        if number == len(groups):
            files += [(path.relative_to(root).as_posix(), path) for path in _metadata_files(root)]
        written.append(_write_tar(out_dir / name, files, record_bytes if number == len(groups) else None))
    fsync_dir(out_dir)
    write_atomic(root / RECORD, record_bytes, durable=True)  # the sequence counts as written from here on
    return SequenceWritten(sequence, written, len(new), sum(size for _, _, size in new), previous)


def _record_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()


def _write_tar(target: Path, files: list[tuple[str, Path]], record: bytes | None) -> Path:
    tmp = target.with_name(target.name + ".part")
    try:
        with tmp.open("wb") as fh:
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for arcname, path in files:
                    tar.add(path, arcname=arcname, recursive=False)
                if record is not None:
                    info = tarfile.TarInfo(RECORD)
                    info.size, info.mtime, info.mode = len(record), int(time.time()), 0o644
                    tar.addfile(info, io.BytesIO(record))
            commit_file(fh, tmp, target, sync_dir=False)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


# ------------------------------------------------------------------------------------ reading

@dataclass(frozen=True, slots=True)
class _Member:
    archive: Path
    offset: int
    size: int


@dataclass(slots=True)
class ArchivedCopy:
    """The archives found in a directory: blobs by digest, and the newest sequence's metadata."""

    root: Path  # where the metadata was extracted: a layout root without blobs
    members: dict[str, _Member]
    sequences: list[int]  # present in the directory, ascending
    newest: int


def _safe(archive: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    if (name.startswith("/") or ".." in Path(name).parts or not (member.isfile() or member.isdir())
            or member.issparse()):
        raise RegistryError(f"{archive}: refusing unsafe member {name!r}", hint=_HINT)


def open_archives(root: Path) -> ArchivedCopy:
    """Index every archive of `root` (headers only), oldest sequence first so newer ones win, and
    extract the metadata of the newest sequence. Refuses unsafe members and a newest sequence
    whose last archive (the one with the metadata) is missing."""
    archives = find_archives(root)
    if not archives:
        raise RegistryError(f"{root} holds no archives (mirror_seq<N>_*.tar)", hint=_HINT)
    members: dict[str, _Member] = {}
    metadata: dict[int, dict[str, _Member]] = {}
    for found in archives:
        with tarfile.open(found.path, "r:") as tar:
            for member in tar:
                _safe(found.path, member)
                if member.isdir():
                    continue
                where = _Member(found.path, member.offset_data, member.size)
                if match := _BLOB_MEMBER.match(member.name):
                    members[f"sha256:{match[1]}"] = where
                else:
                    metadata.setdefault(found.sequence, {})[member.name] = where
    sequences = sorted({a.sequence for a in archives})
    newest = sequences[-1]
    meta = metadata.get(newest, {})
    if "index.json" not in meta:
        present = ", ".join(a.path.name for a in archives if a.sequence == newest)
        raise RegistryError(f"{root}: sequence {newest} is incomplete: its last archive, which holds the "
                            f"metadata, is missing (found {present})",
                            hint="carry every archive of the sequence (mirror_seq<N>_*.tar)")
    target = _metadata_dir(root)
    for old in [target / "index.json", target / "oci-layout", *(target / "edgebuild").glob("*.json")]:
        old.unlink(missing_ok=True)
    for name, where in meta.items():
        with where.archive.open("rb") as fh:
            fh.seek(where.offset)
            write_atomic(target / name, fh.read(where.size), durable=True)
    copy = ArchivedCopy(target, members, sequences, newest)
    record = read_record(target)
    if record is not None:
        _check_sequences(root, copy, record, {s: metadata[s] for s in metadata if s != newest})
    return copy


def _metadata_dir(root: Path) -> Path:
    """DIR/unpacked, or a fresh temporary directory when DIR cannot be written (a DVD, a read-only mount)."""
    target = root / UNPACK_DIR
    try:
        target.mkdir(exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=target, prefix=".probe-")
        probe.close()
        return target
    except OSError:
        return Path(tempfile.mkdtemp(prefix="edgebuild-unpacked-"))


def _check_sequences(root: Path, copy: ArchivedCopy, record: dict[str, Any],
                     older: dict[int, dict[str, _Member]]) -> None:
    """Every archive the newest sequence lists must be there, and older sequences found beside it
    must come from the same disk copy (their records carry the same id)."""
    entry = next((s for s in record["sequences"] if int(s["sequence"]) == copy.newest), None)
    if entry is not None:
        missing = [name for name in entry.get("archives", [])
                   if not (root / name).is_file() and not (root / ARCHIVE_DIR / name).is_file()]
        if missing:
            raise RegistryError(f"{root}: sequence {copy.newest} is incomplete: {', '.join(missing)} "
                                "is missing", hint="carry every archive of the sequence (mirror_seq<N>_*.tar)")
    for sequence, meta in older.items():
        where = meta.get(RECORD)
        if where is None or sequence == 0:
            continue
        with where.archive.open("rb") as fh:
            fh.seek(where.offset)
            try:
                other = json.loads(fh.read(where.size))
            except ValueError:
                other = {}
        if other.get("id") != record.get("id"):
            raise RegistryError(f"{root}: mirror_seq{sequence} and mirror_seq{copy.newest} come from different "
                                "disk copies", hint="keep the archives of each mirror-to-disk directory apart")


class ArchivedLayout(LayoutEndpoint):
    """A read-only layout whose blobs are read straight out of the tar archives."""

    def __init__(self, copy: ArchivedCopy, *, retry: RetryPolicy | None = None) -> None:
        super().__init__(copy.root, create=False, retry=retry)
        self.copy = copy
        self.label = f"archives:{copy.root.parent}"

    def blob_size(self, digest: str) -> int | None:
        member = self.copy.members.get(digest)
        return member.size if member else None

    @contextmanager
    def open_stored(self, digest: str) -> Iterator[tuple[Iterator[bytes], int]]:
        member = self.copy.members.get(digest)
        if member is None:
            raise FileNotFoundError(digest)
        with member.archive.open("rb") as fh:
            fh.seek(member.offset)

            def chunks() -> Iterator[bytes]:
                left = member.size
                while left:
                    chunk = fh.read(min(CHUNK, left))
                    if not chunk:
                        raise RegistryError(f"{member.archive}: ends inside blob {digest}",
                                            hint="the archive is truncated; carry it again")
                    left -= len(chunk)
                    yield chunk
            yield chunks(), member.size
