"""An OCI image layout on disk as a copy endpoint (mirror-to-disk and disk-to-mirror).

Every file appears atomically and durably: blobs are written to a temporary name, checked
against their digest while they stream, fsync'ed, renamed into `blobs/sha256/`, and the directory
is fsync'ed after the rename; `index.json` is rewritten the same way after each finished image.
So an interrupted run, even a power cut, leaves only whole blobs (a rerun skips them, and a
renamed file is never empty) and an index that names only images whose every blob is present.
Leftovers of a killed run (`.*.part` blobs, `.*.tmp` metadata) are removed by the next run that
takes the layout's lock (`remove_leftovers`, called by mirror_to_disk under `locked_directory`).
Images are named in index.json by `org.opencontainers.image.ref.name` = `REPOSITORY:TAG` or
`REPOSITORY@DIGEST`, which `skopeo … oci:DIR:NAME` understands.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ..errors import RegistryError
from ..fsutil import commit_file, pause_point, write_atomic
from .endpoints import BlobOpener, BlobOutcome, RepositoryState, transfer_with_retries
from .manifest import OCI_INDEX, Descriptor, Manifest, parse_manifest
from .retry import RetryPolicy
from .stream import verified_chunks

REF_NAME = "org.opencontainers.image.ref.name"
CHUNK = 1024 * 1024


# what a killed writer leaves: blobs being downloaded (_write_blob), files being replaced
# (fsutil.write_atomic), scratch directories of catalog rebuilds (mirror._rebuild_catalogs)
_PARTIAL_RE = re.compile(r"^\..+\.(part|tmp)$")
_SCRATCH_RE = re.compile(r"^(edgebuild-catalog-|\.fbc-spool-)")


def remove_leftovers(root: Path) -> int:
    """Remove what killed runs left in the layout at `root`; the caller holds the layout's lock, so
    no live writer owns them. Returns how many were removed."""
    removed = 0
    for directory in (root, root / "blobs" / "sha256", root / "edgebuild"):
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and _PARTIAL_RE.match(entry.name):
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
            elif entry.is_dir(follow_symlinks=False) and _SCRATCH_RE.match(entry.name):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    return removed


def ref_name(repository: str, reference: str) -> str:
    return f"{repository}@{reference}" if reference.startswith("sha256:") else f"{repository}:{reference}"


def check_layout(root: Path) -> None:
    """Refuse a directory that is not an OCI image layout of version 1.0.0 (the `oci-layout` file)."""
    marker = root / "oci-layout"
    if not marker.is_file():
        raise RegistryError(f"{root} is not an OCI image layout: it has no oci-layout file",
                            hint="give the directory written by e.g. `skopeo copy ... oci:DIR:TAG`")
    try:
        version = json.loads(marker.read_text()).get("imageLayoutVersion")
    except (OSError, ValueError, AttributeError) as exc:
        raise RegistryError(f"{marker}: unreadable ({exc})", hint="oci-layout must be a JSON file") from None
    if version != "1.0.0":
        raise RegistryError(f"{root}: OCI layout version {version!r} is not supported (expected 1.0.0)")


def split_ref_name(name: str) -> tuple[str, str]:
    """(repository, tag or digest) of an index.json ref name written by ref_name()."""
    if "@" in name:
        repository, _, reference = name.partition("@")
    else:
        repository, _, reference = name.rpartition(":")
    return repository, reference


class LayoutEndpoint:
    """Reads and writes one OCI image layout directory; repositories only name index entries."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True, retry: RetryPolicy | None = None) -> None:
        self.root = Path(root)
        self.retry = retry or RetryPolicy()
        self.cheap_blob_check = True
        self.label = f"oci:{self.root}"
        self._lock = threading.Lock()
        if create:
            (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            if not (self.root / "oci-layout").exists():
                write_atomic(self.root / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}', durable=True)
        elif not (self.root / "index.json").is_file():
            raise RegistryError(f"{self.root} is not an OCI image layout (no index.json)",
                                hint="point --from at the directory a `mirror --to file://DIR` run wrote")
        self._index = self._read_index()

    def _read_index(self) -> dict[str, Any]:
        path = self.root / "index.json"
        if not path.exists():
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        try:
            index = json.loads(path.read_text())
        except ValueError as exc:
            raise RegistryError(f"{path} is not valid JSON: {exc}",
                                hint="the layout is damaged; remove index.json and rerun mirror-to-disk") from None
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise RegistryError(f"{path} has no 'manifests' list", hint="the layout is damaged")
        index["manifests"] = [m for m in index["manifests"] if isinstance(m, dict) and isinstance(m.get("digest"), str)]
        return index

    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
            raise RegistryError(f"{self.label}: refusing unexpected digest {digest!r}")
        return self.root / "blobs" / "sha256" / hexpart

    def refs(self) -> dict[str, str]:
        """{ref name: manifest digest} of index.json."""
        with self._lock:
            return {m.get("annotations", {}).get(REF_NAME, ""): m["digest"] for m in self._index["manifests"]}

    def _lookup(self, repository: str, reference: str) -> dict[str, Any] | None:
        name = ref_name(repository, reference)
        with self._lock:
            for entry in self._index["manifests"]:
                if entry.get("annotations", {}).get(REF_NAME) == name:
                    return entry
        return None

    def blob_size(self, digest: str) -> int | None:
        """The stored size of a blob, or None when this layout does not hold it."""
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    @contextmanager
    def open_stored(self, digest: str) -> Iterator[tuple[Iterator[bytes], int]]:
        """(chunks, size) of a stored blob; FileNotFoundError when it is not held. Subclasses that
        keep blobs elsewhere (tar archives) override this and blob_size, nothing else."""
        with self.blob_path(digest).open("rb") as fh:
            yield iter(lambda: fh.read(CHUNK), b""), os.fstat(fh.fileno()).st_size

    def indexed_digest(self, repository: str, reference: str) -> str | None:
        """The manifest digest `reference` names (itself for a digest), whether or not the blob is held."""
        if reference.startswith("sha256:"):
            return reference
        entry = self._lookup(repository, reference)
        return entry["digest"] if entry else None

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        if reference.startswith("sha256:"):
            digest, media_type = reference, None
        else:
            entry = self._lookup(repository, reference)
            if entry is None:
                raise RegistryError(f"{self.label}: no image named {ref_name(repository, reference)}",
                                    hint="the disk copy is incomplete; rerun mirror-to-disk")
            digest, media_type = entry["digest"], entry.get("mediaType")
        return self.read_manifest(digest, media_type, f"{self.label}:{ref_name(repository, reference)}")

    def read_manifest(self, digest: str, media_type: str | None, origin: str) -> Manifest:
        """The stored manifest blob `digest`, parsed (parse_manifest caps its size) and checked against its digest."""
        self.blob_path(digest)  # refuses a malformed digest before any lookup
        try:
            with self.open_stored(digest) as (chunks, _size):
                data = b"".join(chunks)
        except FileNotFoundError:
            raise RegistryError(f"{self.label}: manifest {digest} is missing",
                                hint="the disk copy is incomplete; rerun mirror-to-disk") from None
        manifest = parse_manifest(data, media_type, origin)
        if manifest.digest != digest:
            raise RegistryError(f"{self.label}: the stored manifest {digest} does not match its digest "
                                f"(content digest is {manifest.digest})",
                                hint="the disk copy is damaged; delete that file and copy the image again")
        return manifest

    def names(self) -> list[str]:
        """The ref names of index.json, sorted."""
        return sorted(set(self.refs()) - {""})

    def entry(self, name: str) -> dict[str, Any]:
        """The index.json entry a ref name, a digest or "" (the layout's only image) selects."""
        with self._lock:
            entries = list(self._index["manifests"])
        if name.startswith("sha256:"):
            self.blob_path(name)
            return next((e for e in entries if e["digest"] == name), {"digest": name})
        if not name:
            if len(entries) == 1:
                return entries[0]
            if not entries:
                raise RegistryError(f"OCI layout {self.root} holds no image (index.json lists no manifests)")
            raise RegistryError(f"OCI layout {self.root} holds {len(entries)} images; say which one",
                                hint=f"use oci://{self.root}:NAME with NAME one of: "
                                     f"{', '.join(self.names()) or '(unnamed)'}")
        for candidate in entries:
            if candidate.get("annotations", {}).get(REF_NAME) == name:
                return candidate
        raise RegistryError(f"OCI layout {self.root} has no image named {name!r}",
                            hint=f"names in its index.json: {', '.join(self.names()) or '(none)'}")

    def repository_state(self, repository: str) -> RepositoryState:
        return "exists"  # looking a blob up is a stat here: never worth skipping

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        if reference.startswith("sha256:"):
            return reference if self.blob_size(reference) is not None else None
        entry = self._lookup(repository, reference)
        return entry["digest"] if entry else None

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        try:
            self._put_manifest(repository, reference, manifest)
        except OSError as exc:
            raise self._disk_error(exc) from None

    def _put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        path = self.blob_path(manifest.digest)
        if not path.exists():
            write_atomic(path, manifest.data, durable=True)
        if reference.startswith("sha256:") and reference == manifest.digest:
            return  # a child of an index: reachable through its parent, no name of its own
        name = ref_name(repository, reference)
        entry = {"mediaType": manifest.media_type, "digest": manifest.digest, "size": len(manifest.data),
                 "annotations": {REF_NAME: name}}
        with self._lock:
            manifests = [m for m in self._index["manifests"] if m.get("annotations", {}).get(REF_NAME) != name]
            manifests.append(entry)
            self._index["manifests"] = manifests
            write_atomic(self.root / "index.json", json.dumps(self._index, indent=1).encode(), durable=True)

    @contextmanager
    def open_blob(self, repository: str, desc: Descriptor) -> Iterator[tuple[Iterator[bytes], int | None]]:
        if self.blob_size(desc.digest) is None:
            raise RegistryError(f"{self.label}: blob {desc.digest} of {repository} is missing",
                                hint="the disk copy is incomplete; rerun mirror-to-disk")
        with self.open_stored(desc.digest) as (chunks, size):
            yield chunks, size

    def ensure_blob(self, repository: str, desc: Descriptor, opener: BlobOpener, origin: str,
                    on_bytes: Callable[[int], None] | None = None, assume_absent: bool = False) -> BlobOutcome:
        path = self.blob_path(desc.digest)
        if self.blob_size(desc.digest) == desc.size:
            return "present"
        transfer_with_retries(lambda count: self._write_blob(path, desc, opener, origin, count), self.retry, on_bytes)
        return "copied"

    def _write_blob(self, path: Path, desc: Descriptor, opener: BlobOpener, origin: str,
                    count: Callable[[int], None]) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:16]}.", suffix=".part")
        except OSError as exc:
            raise self._disk_error(exc) from None
        out = os.fdopen(fd, "wb")
        try:
            with opener() as (chunks, _size):
                for chunk in verified_chunks(chunks, desc, origin, count):
                    try:
                        out.write(chunk)
                    except OSError as exc:  # the disk, not the network: no retry will help
                        raise self._disk_error(exc) from None
                    pause_point("layout-blob-partly-written")
            try:
                commit_file(out, tmp, path)
            except OSError as exc:
                raise self._disk_error(exc) from None
        except BaseException:
            _close_quietly(out)  # a buffered close would flush again and hide the error raised above
            Path(tmp).unlink(missing_ok=True)
            raise

    def _disk_error(self, exc: OSError) -> Exception:
        """`writing DIR: No space left on device (...)`: one line, the layout the user named, final."""
        from ..errors import FileSystemError
        return FileSystemError.from_os_error(exc, self.root, "writing")  # not a TransientError: no retry


def _close_quietly(fh: IO[bytes]) -> None:
    """Close a temporary file that is being thrown away; its own flush error adds nothing."""
    try:
        fh.close()
    except OSError:
        pass
