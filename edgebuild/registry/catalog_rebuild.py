"""Filtered catalogs: write the kept part of an FBC, and rebuild the catalog image around it.

As oc-mirror v1 does (`--rebuild-catalogs`): the original image's layers stay, then one layer
whites out the catalog directory and one more holds the filtered catalog as a JSON stream at
`<configs>/index/index.json`; the config keeps its labels (the configs label included) and
gains the two diff_ids. Every manifest of an index is rebuilt and a new index pushed over them.

The FBC writer streams: it reads the original blobs again from the extracted catalog directory
(the model dropped large bundle properties, a rebuilt catalog must keep them) one at a time and
appends kept ones to per-package spool files, concatenated at the end in package order.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ..catalog.loader import iter_dir_blobs
from ..catalog.model import CATALOG_LABEL, SCHEMA_BUNDLE, SCHEMA_CHANNEL, SCHEMA_DEPRECATIONS, SCHEMA_PACKAGE
from ..catalog.selection import Selection
from ..errors import RegistryError
from .endpoints import BlobOpener, Endpoint
from .manifest import (
    DOCKER_MANIFEST,
    MAX_CONFIG_BYTES,
    OCI_LAYER_GZIP,
    Descriptor,
    Manifest,
    parse_config,
    parse_manifest,
    sha256_digest,
)

DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_ORDER = {SCHEMA_PACKAGE: 0, SCHEMA_CHANNEL: 1, SCHEMA_BUNDLE: 2, SCHEMA_DEPRECATIONS: 3}


def _trim_deprecations(blob: dict[str, Any], channels: Iterable[str], bundles: set[str]) -> dict[str, Any] | None:
    """An olm.deprecations blob with only the entries that still refer to something kept (None if empty)."""
    kept_channels = set(channels)
    entries = []
    for entry in blob.get("entries") or []:
        ref = entry.get("reference") or {}
        schema, name = ref.get("schema"), ref.get("name")
        if (schema == SCHEMA_PACKAGE or (schema == SCHEMA_CHANNEL and name in kept_channels)
                or (schema == SCHEMA_BUNDLE and name in bundles)):
            entries.append(entry)
    return {**blob, "entries": entries} if entries else None


def write_filtered_fbc(selection: Selection, catalog_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the selected packages, channels (entries rewritten) and bundles of `catalog_dir` to `out` (JSON stream)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = selection.packages
    bundle_names = {name: sp.bundle_names() for name, sp in kept.items()}
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".fbc-spool-") as spool_dir:
        spools: dict[tuple[str, int], BinaryIO] = {}

        def spool(package: str, order: int) -> BinaryIO:
            key = (package, order)
            if key not in spools:
                spools[key] = open(Path(spool_dir) / f"{len(spools)}.json", "w+b")
            return spools[key]
        try:
            for blob in iter_dir_blobs(Path(catalog_dir)):
                schema = blob.get("schema")
                package = blob.get("name") if schema == SCHEMA_PACKAGE else blob.get("package")
                if package is None and schema not in (SCHEMA_PACKAGE, SCHEMA_CHANNEL, SCHEMA_BUNDLE):
                    # blobs of no package (other schemas) are kept, as oc-mirror v2 keeps them
                    spool("", _ORDER.get(str(schema), 4)).write(json.dumps(blob, separators=(",", ":")).encode()
                                                                + b"\n")
                    continue
                if not isinstance(package, str) or package not in kept:
                    continue
                selected = kept[package]
                if schema == SCHEMA_DEPRECATIONS:
                    trimmed = _trim_deprecations(blob, selected.channels.keys(), bundle_names[package])
                    if trimmed is None:
                        continue
                    blob = trimmed
                elif schema == SCHEMA_PACKAGE and selected.default_channel:  # none: left as the source had it
                    blob = {**blob, "defaultChannel": selected.default_channel}
                elif schema == SCHEMA_CHANNEL:
                    entries = selected.channels.get(str(blob.get("name")))
                    if entries is None:
                        continue
                    blob = {**blob, "entries": [e.to_fbc() for e in entries]}
                elif schema == SCHEMA_BUNDLE and blob.get("name") not in bundle_names[package]:
                    continue
                spool(package, _ORDER.get(str(schema), 4)).write(
                    json.dumps(blob, separators=(",", ":")).encode() + b"\n")
            tmp = out.with_name(f".{out.name}.part")
            with tmp.open("wb") as target:
                for key in sorted(spools):
                    fh = spools[key]
                    fh.seek(0)
                    while chunk := fh.read(1 << 20):
                        target.write(chunk)
            os.replace(tmp, out)
        finally:
            for fh in spools.values():
                fh.close()
    return out


@dataclass(frozen=True, slots=True)
class LayerFile:
    path: Path
    digest: str
    size: int
    diff_id: str


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes what passes through to `target`."""

    def __init__(self, target: _Sink) -> None:
        self.target = target
        self.hasher = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        return self.target.write(data)


def _write_layer(path: Path, add_members: Callable[[tarfile.TarFile], None]) -> LayerFile:
    """A gzip'ed tar layer at `path`; returns its digest, size and diff_id (sha256 of the tar)."""
    with path.open("wb") as raw:
        outer = _Hashing(raw)
        with gzip.GzipFile(fileobj=outer, mode="wb", compresslevel=6, mtime=0) as gz:
            inner = _Hashing(gz)
            with tarfile.open(fileobj=inner, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                add_members(tar)
    return LayerFile(path, "sha256:" + outer.hasher.hexdigest(), path.stat().st_size,
                     "sha256:" + inner.hasher.hexdigest())


def _tarinfo(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime, info.uid, info.gid = kind, size, 0, 0, 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def build_catalog_layers(fbc_file: Path, configs_dir: str, workdir: Path) -> tuple[LayerFile, LayerFile]:
    """(whiteout layer, filtered catalog layer) for a catalog directory such as "/configs"."""
    rel = posixpath.normpath("/" + configs_dir).lstrip("/")
    if not rel or rel.startswith(".."):
        raise RegistryError(f"catalog label {CATALOG_LABEL}={configs_dir!r} does not name a directory",
                            hint="the catalog image must label its FBC directory, e.g. /configs")
    parent, base = posixpath.split(rel)
    whiteout = posixpath.join(parent, f".wh.{base}") if parent else f".wh.{base}"
    workdir.mkdir(parents=True, exist_ok=True)
    white = _write_layer(workdir / "whiteout.tar.gz", lambda tar: tar.addfile(_tarinfo(whiteout), io.BytesIO(b"")))
    size = fbc_file.stat().st_size

    def add_catalog(tar: tarfile.TarFile) -> None:
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            tar.addfile(_tarinfo("/".join(parts[:i]), tarfile.DIRTYPE))
        tar.addfile(_tarinfo(f"{rel}/index", tarfile.DIRTYPE))
        with fbc_file.open("rb") as fh:
            tar.addfile(_tarinfo(f"{rel}/index/index.json", size=size), fh)
    catalog = _write_layer(workdir / "catalog.tar.gz", add_catalog)
    return white, catalog


def _bytes_opener(data: bytes) -> BlobOpener:
    return lambda: contextlib.nullcontext((iter([data]), len(data)))


def _file_opener(path: Path) -> BlobOpener:
    @contextlib.contextmanager
    def opener() -> Iterator[tuple[Iterator[bytes], int | None]]:
        with path.open("rb") as fh:
            yield iter(lambda: fh.read(1 << 20), b""), path.stat().st_size
    return opener


def _blob_opener(src: Endpoint, repo: str, desc: Descriptor) -> BlobOpener:
    return lambda: src.open_blob(repo, desc)


def _read_config(src: Endpoint, repo: str, desc: Descriptor, origin: str) -> dict[str, Any]:
    if desc.size > MAX_CONFIG_BYTES:  # refused before a byte is read
        raise RegistryError(f"{origin}: image config of {desc.size} bytes is too large for a catalog image")
    with src.open_blob(repo, desc) as (chunks, _size):
        data = b"".join(chunks)
    return parse_config(data, desc, f"{origin}: image config")


def rebuild_catalog_image(src: Endpoint, src_repo: str, src_ref: str, dst: Endpoint, dst_repo: str, dst_tag: str,
                          fbc_file: Path, workdir: Path, origin: str) -> tuple[str, bool]:
    """Push the filtered catalog image to `dst_repo:dst_tag`: (its digest, False when the destination
    already had exactly that image). The rebuild is deterministic, so an unchanged selection of an
    unchanged catalog gives the same digest and a rerun pushes nothing."""
    top = src.get_manifest(src_repo, src_ref)
    layers: dict[str, tuple[LayerFile, LayerFile]] = {}

    def rebuild(manifest: Manifest) -> Manifest:
        config_desc = manifest.blobs[0]
        config = _read_config(src, src_repo, config_desc, origin)
        labels = (config.get("config") or {}).get("Labels") or {}
        configs_dir = labels.get(CATALOG_LABEL)
        if not configs_dir:
            raise RegistryError(f"{origin}: not a file-based catalog image (no {CATALOG_LABEL} label)",
                                hint="only FBC catalog images (OpenShift 4.11 and later) can be filtered")
        if configs_dir not in layers:
            layers[configs_dir] = build_catalog_layers(fbc_file, configs_dir, workdir / f"layers-{len(layers)}")
        white, catalog = layers[configs_dir]
        for desc in manifest.blobs[1:]:
            dst.ensure_blob(dst_repo, desc, _blob_opener(src, src_repo, desc), f"{origin} blob {desc.digest[:19]}")
        layer_type = DOCKER_LAYER_GZIP if manifest.media_type == DOCKER_MANIFEST else OCI_LAYER_GZIP
        new_descs = []
        for layer in (white, catalog):
            desc = Descriptor(layer_type, layer.digest, layer.size)
            dst.ensure_blob(dst_repo, desc, _file_opener(layer.path), f"{origin} rebuilt layer")
            new_descs.append(desc.to_json())
        config = dict(config)
        rootfs = dict(config.get("rootfs") or {"type": "layers", "diff_ids": []})
        rootfs["diff_ids"] = list(rootfs.get("diff_ids") or []) + [white.diff_id, catalog.diff_id]
        config["rootfs"] = rootfs
        if config.get("history"):
            config["history"] = list(config["history"]) + [
                {"created_by": f"edgebuild: whiteout {configs_dir}", "comment": "filtered catalog"},
                {"created_by": f"edgebuild: filtered catalog at {configs_dir}/index/index.json",
                 "comment": "filtered catalog"}]
        config_data = json.dumps(config, separators=(",", ":")).encode()
        new_config = Descriptor(config_desc.media_type, sha256_digest(config_data), len(config_data))
        dst.ensure_blob(dst_repo, new_config, _bytes_opener(config_data), f"{origin} rebuilt config")
        body = dict(manifest.body)
        body["config"] = {**(manifest.body.get("config") or {}), **new_config.to_json()}
        body["layers"] = list(manifest.body.get("layers") or []) + new_descs
        data = json.dumps(body, separators=(",", ":")).encode()
        return parse_manifest(data, manifest.media_type, origin)

    def push_top(manifest: Manifest) -> tuple[str, bool]:
        if dst.manifest_digest(dst_repo, dst_tag) == manifest.digest:
            return manifest.digest, False
        dst.put_manifest(dst_repo, dst_tag, manifest)
        return manifest.digest, True

    if not top.is_index:
        return push_top(rebuild(top))
    children = []
    for raw in top.body.get("manifests") or []:
        child = src.get_manifest(src_repo, raw["digest"])
        rebuilt = rebuild(child)
        dst.put_manifest(dst_repo, rebuilt.digest, rebuilt)
        children.append({**raw, "digest": rebuilt.digest, "size": len(rebuilt.data), "mediaType": rebuilt.media_type})
    body = {**top.body, "manifests": children}
    return push_top(parse_manifest(json.dumps(body, separators=(",", ":")).encode(), top.media_type, origin))
