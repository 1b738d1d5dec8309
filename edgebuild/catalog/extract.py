"""Unpack the catalog directory of an image's layers, safely.

A catalog image is untrusted input. Its layers (tar, gzip-compressed or not) are applied in order
into a fresh target directory, OCI whiteouts included, keeping only the files under the catalog
directory named by the image label (`/configs` usually). Anything that could write outside the
target is refused and the partial result removed: `..` or absolute member names, links that lead
out, device and fifo files, and blobs that do not match their digest or end early.

Each layer is read once, as a stream, hashed while it is read; nothing is buffered whole.
A budget (extract_budget.py) bounds what one image may write: total and per-file bytes, entries,
path depth and the expansion ratio of compressed layers; it is checked while streaming, before a
byte of an oversized entry is written, so a hostile image cannot fill the disk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import shutil
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from ..errors import CatalogError
from .extract_budget import BudgetTally, ExtractBudget, ObservedReader, default_budget

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class LayerBlob:
    """One layer to apply: its descriptor facts and a way to open its (compressed) bytes."""

    digest: str
    media_type: str
    open: Callable[[], BinaryIO]
    size: int | None = None


class _HashingReader(ObservedReader):
    """Reads a stream while computing its sha256 and size, to check the blob once it is consumed."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw, self._count)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def _count(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)


def extract_configs(layers: Iterable[LayerBlob], target: Path, configs_dir: str,
                    budget: ExtractBudget | None = None) -> Path:
    """Apply `layers` in order into `target` (created; must not exist) and return the catalog directory in it.

    `configs_dir` is the label value (e.g. "/configs"). `budget` defaults to default_budget() (the
    --catalog-limit options and EDGEBUILD_CATALOG_LIMITS). On any error `target` is removed again.
    """
    tally = BudgetTally(budget or default_budget())
    keep = _normalize_configs_dir(configs_dir)
    target = Path(target)
    if target.exists():
        raise CatalogError(f"extraction target {target} already exists", "remove it or use another work directory")
    target.mkdir(parents=True)
    try:
        for layer in layers:
            _apply_layer(layer, target.resolve(), keep, tally)
        out = target.joinpath(*keep.split("/"))
        out.mkdir(parents=True, exist_ok=True)
        return out
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _normalize_configs_dir(configs_dir: str) -> str:
    norm = posixpath.normpath("/" + configs_dir.strip()).lstrip("/")
    if not norm or ".." in configs_dir.split("/"):
        raise CatalogError(f"catalog directory label value {configs_dir!r} is not a directory inside the image",
                           "the label operators.operatorframework.io.index.configs.v1 must name a path "
                           "such as /configs")
    return norm


def _apply_layer(layer: LayerBlob, root: Path, keep: str, tally: BudgetTally) -> None:
    if "zstd" in layer.media_type:
        raise _zstd_error(layer)
    raw = layer.open()
    try:
        hashing = _HashingReader(raw)
        buffered = io.BufferedReader(hashing, buffer_size=_COPY_CHUNK)
        magic = buffered.peek(4)[:4]
        if magic.startswith(_ZSTD_MAGIC):
            raise _zstd_error(layer)
        stream: BinaryIO = (cast(BinaryIO, gzip.GzipFile(fileobj=buffered, mode="rb"))
                            if magic.startswith(_GZIP_MAGIC) else cast(BinaryIO, buffered))
        stream = tally.expansion_reader(stream, lambda: hashing.size, layer.digest)
        try:
            _LayerWriter(layer, root, keep, tally).apply(stream)
            while stream.read(_COPY_CHUNK):  # finish the gzip member (checks its CRC) and the blob
                pass
            while buffered.read(_COPY_CHUNK):
                pass
        except (EOFError, gzip.BadGzipFile, zlib.error, tarfile.TarError) as exc:
            raise CatalogError(f"layer {layer.digest}: broken blob ({type(exc).__name__}: {exc})",
                               "the download may be truncated or corrupt; fetch the image again") from None
        except OSError as exc:
            raise CatalogError(f"layer {layer.digest}: cannot unpack into {root}: {exc}",
                               "check free space and permissions of the work directory") from None
    finally:
        raw.close()
    actual = "sha256:" + hashing.sha256.hexdigest()
    if actual != layer.digest:
        raise CatalogError(f"layer {layer.digest}: content digest is {actual}; the blob is corrupt or not that layer",
                           "fetch the image again; if it persists the image source serves wrong data")
    if layer.size is not None and hashing.size != layer.size:
        raise CatalogError(f"layer {layer.digest}: {hashing.size} bytes read, the manifest says {layer.size}",
                           "fetch the image again")


def _zstd_error(layer: LayerBlob) -> CatalogError:
    return CatalogError(f"layer {layer.digest} is zstd-compressed ({layer.media_type}); edgebuild reads only "
                        "uncompressed and gzip layers",
                        "use a gzip build of the catalog image, or pass the catalog with "
                        "--catalog-content REF=PATH after unpacking it (e.g. `skopeo copy` to an OCI layout with "
                        "--dest-compress-format gzip)")


class _LayerWriter:
    """Applies one layer's tar members under `root`, keeping only what lies under `keep`."""

    def __init__(self, layer: LayerBlob, root: Path, keep: str, tally: BudgetTally) -> None:
        self.layer = layer
        self.tally = tally
        self.root = root
        self.keep = keep
        self.written: set[str] = set()  # paths this layer created: its own whiteouts do not hide them

    def fail(self, member: str, why: str) -> CatalogError:
        return CatalogError(f"layer {self.layer.digest}: unsafe entry {member!r}: {why}",
                            "refusing to unpack this image; it is malformed or hostile")

    def apply(self, stream: BinaryIO) -> None:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                self.member(tar, member)

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        path = self.clean_name(member.name)
        self.tally.entry(self.layer.digest, member.name)
        if path is None:
            return  # the root directory itself
        base = posixpath.basename(path)
        parent = posixpath.dirname(path)
        if base == OPAQUE_WHITEOUT:
            self.opaque(parent)
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX):]
            if hidden in ("", ".", ".."):  # `.wh...` would hide the parent directory
                raise self.fail(member.name, f"a whiteout must name an entry, not {hidden!r}")
            self.whiteout(posixpath.join(parent, hidden), member.name)
            return
        inside = path == self.keep or path.startswith(self.keep + "/")
        if not inside:
            if self.keep.startswith(path + "/") and not member.isdir():
                # a file or link where the catalog directory's parent should be: it hides what lower layers had
                self.remove(path)
            return
        self.tally.depth(self.layer.digest, member.name, path.count("/") + 1)
        if member.ischr() or member.isblk() or member.isfifo():
            raise self.fail(member.name, "device and fifo files are not allowed in a catalog")
        if member.issym():
            self.symlink(path, member)
        elif member.islnk():
            self.hardlink(path, member)
        elif member.isdir():
            self.directory(path)
        elif member.isreg():
            self.regular(path, tar, member)
        else:
            raise self.fail(member.name, f"unsupported tar entry type {member.type!r}")
        while path and path not in self.written:  # parents too: an opaque whiteout later must keep them
            self.written.add(path)
            path = posixpath.dirname(path)

    def clean_name(self, name: str) -> str | None:
        """The member path relative to the image root, or an error when it could leave the root."""
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise self.fail(name, "absolute paths are not allowed in a layer")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.fail(name, "'..' path components are not allowed in a layer")
        if "\x00" in name:
            raise self.fail(name, "NUL byte in the name")
        return "/".join(parts) or None

    def host_path(self, path: str, member: str) -> Path:
        """Where `path` goes on disk; refuses a parent that (through links) resolves outside the root."""
        dest = self.root.joinpath(*path.split("/"))
        parent = Path(os.path.realpath(dest.parent))
        if parent != self.root and not parent.is_relative_to(self.root):
            raise self.fail(member, "its parent directory leads outside the extraction directory")
        return dest

    def link_target(self, path: str, linkname: str, member: str, *, relative_to_parent: bool) -> str:
        """The image-root path a link points at; must stay inside the catalog directory."""
        if not linkname:
            raise self.fail(member, "link with an empty target")
        if linkname.startswith("/"):
            joined = linkname
        elif relative_to_parent:
            joined = posixpath.join("/", posixpath.dirname(path), linkname)
        else:
            joined = "/" + linkname
        # normpath on an absolute path clamps '..' at '/', so check the raw walk for escapes first
        depth = 0
        for part in joined.split("/"):
            if part == "..":
                depth -= 1
                if depth < 0:
                    raise self.fail(member, f"link target {linkname!r} leads outside the image root")
            elif part not in ("", "."):
                depth += 1
        resolved = posixpath.normpath(joined).lstrip("/")
        if not (resolved == self.keep or resolved.startswith(self.keep + "/")):
            raise self.fail(member, f"link target {linkname!r} leads outside the catalog directory /{self.keep}")
        return resolved

    def prepare(self, path: str, member: str) -> Path:
        dest = self.host_path(path, member)
        self.make_parents(posixpath.dirname(path), member)
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.is_dir():
            shutil.rmtree(dest)
        return dest

    def make_parents(self, parent: str, member: str) -> None:
        """Create the directories above an entry; a link or file in their way is replaced, never followed."""
        current = self.root
        for part in parent.split("/") if parent else ():
            current = current / part
            if current.is_symlink() or (current.exists() and not current.is_dir()):
                current.unlink()
            current.mkdir(mode=0o755, exist_ok=True)
        if not Path(os.path.realpath(current)).is_relative_to(self.root):
            raise self.fail(member, "its parent directory leads outside the extraction directory")

    def directory(self, path: str) -> None:
        dest = self.host_path(path, path)
        if dest.is_dir() and not dest.is_symlink():
            return
        self.prepare(path, path).mkdir(mode=0o755)

    def regular(self, path: str, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.tally.file(self.layer.digest, member.name, member.size)
        dest = self.prepare(path, member.name)
        source = tar.extractfile(member)
        assert source is not None
        with open(dest, "xb") as out:
            while chunk := source.read(_COPY_CHUNK):
                self.tally.wrote(self.layer.digest, member.name, len(chunk))
                out.write(chunk)
        os.chmod(dest, 0o644)  # never setuid or executable bits from an untrusted image

    def symlink(self, path: str, member: tarfile.TarInfo) -> None:
        resolved = self.link_target(path, member.linkname, member.name, relative_to_parent=True)
        dest = self.prepare(path, member.name)
        # written relative, so the link means the same thing on disk as inside the image
        os.symlink(posixpath.relpath(resolved, posixpath.dirname(path) or "."), dest)

    def hardlink(self, path: str, member: tarfile.TarInfo) -> None:
        resolved = self.link_target(path, member.linkname, member.name, relative_to_parent=False)
        source = self.host_path(resolved, member.name)
        if not source.is_file() or source.is_symlink():
            raise self.fail(member.name, f"hard link to {member.linkname!r}, which is not a file unpacked before it")
        real = Path(os.path.realpath(source))
        if not real.is_relative_to(self.root):
            raise self.fail(member.name, f"hard link target {member.linkname!r} leads outside the extraction directory")
        self.tally.file(self.layer.digest, member.name, real.stat().st_size)
        dest = self.prepare(path, member.name)
        shutil.copyfile(real, dest)  # a copy: the two names never share an inode with anything outside
        os.chmod(dest, 0o644)

    def whiteout(self, hidden: str, member: str) -> None:
        """`.wh.NAME` hides NAME of lower layers; hiding the catalog directory or a parent empties it."""
        if hidden in self.written:
            return
        if hidden == self.keep or self.keep.startswith(hidden + "/") or hidden.startswith(self.keep + "/"):
            self.host_path(hidden, member)
            self.remove(hidden)

    def opaque(self, directory: str) -> None:
        """`.wh..wh..opq` in DIR hides every lower-layer entry of DIR (this layer's own entries stay)."""
        if directory and not (directory == self.keep or self.keep.startswith(directory + "/")
                              or directory.startswith(self.keep + "/")):
            return
        host = self.root.joinpath(*directory.split("/")) if directory else self.root
        if not host.is_dir() or host.is_symlink():
            return
        for child in list(host.iterdir()):
            rel = f"{directory}/{child.name}" if directory else child.name
            if rel in self.written:
                if child.is_dir() and not child.is_symlink():
                    self.opaque_keep_written(rel, child)
                continue
            self.remove(rel)

    def opaque_keep_written(self, rel: str, host: Path) -> None:
        """Inside a directory this layer (re)created, drop lower-layer children it did not write."""
        for child in list(host.iterdir()):
            sub = f"{rel}/{child.name}"
            if sub in self.written:
                if child.is_dir() and not child.is_symlink():
                    self.opaque_keep_written(sub, child)
            else:
                self.remove(sub)

    def remove(self, path: str) -> None:
        host = self.root.joinpath(*path.split("/"))
        if host.is_symlink() or host.is_file():
            host.unlink()
        elif host.is_dir():
            shutil.rmtree(host)

