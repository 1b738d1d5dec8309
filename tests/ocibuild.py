"""Build OCI image layouts for tests, with the standard library only.

Everything is deterministic (tar mtime 0, uid/gid 0, sorted names, gzip mtime 0), so the same
input always gives the same digests. Typical use:

    layout = OciLayout.create(tmp_path / "layout")
    desc = layout.add_image([{"configs/pkg/catalog.json": b"..."}], labels={CATALOG_LABEL: "/configs"})
    layout.tag(desc, "latest")

or in one call: `write_catalog_layout(dir, files)`. Crafted (unsafe) tars come from `tar_bytes`
with `Entry` items, e.g. `Entry("../evil", b"x")` or `Entry("configs/l", type=SYMTYPE, linkname="/etc")`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CATALOG_LABEL = "operators.operatorframework.io.index.configs.v1"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Entry:
    """One tar member. `type` is a tarfile type constant (REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE, FIFOTYPE, ...)."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644


@dataclass(frozen=True)
class Layer:
    """A layer ready to write: its tar bytes (or any bytes, for broken blobs) and whether to gzip them.

    `blob_override` replaces the stored bytes after the digest was computed from `data` — a way to
    make a blob that does not match its descriptor.
    """

    data: bytes
    gzip: bool = True
    media_type: str | None = None
    blob_override: bytes | None = None


LayerSpec = Mapping[str, bytes] | Sequence[Entry] | Layer | bytes


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries: Mapping[str, bytes] | Iterable[Entry]) -> bytes:
    """A deterministic tar of files (name -> bytes) or of `Entry` items, in the order given (mappings: sorted)."""
    items = ([Entry(name, data) for name, data in sorted(entries.items())]
             if isinstance(entries, Mapping) else list(entries))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in items:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.type
            info.mode = entry.mode if entry.type != tarfile.DIRTYPE or entry.mode != 0o644 else 0o755
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.linkname = entry.linkname
            if entry.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    """gzip with mtime 0 and no file name, so equal input gives equal bytes."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def fbc_files(catalog_dir: Path, prefix: str = "configs") -> dict[str, bytes]:
    """Files of an FBC directory as layer paths under `prefix` (what a catalog image carries)."""
    root = Path(catalog_dir)
    return {f"{prefix}/{p.relative_to(root).as_posix()}": p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _as_layer(spec: LayerSpec) -> Layer:
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, bytes):
        return Layer(spec)
    return Layer(tar_bytes(spec))  # type: ignore[arg-type]


@dataclass
class OciLayout:
    """An OCI image layout directory being written: blobs/sha256/*, oci-layout, index.json."""

    root: Path
    manifests: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, root: Path) -> OciLayout:
        """An existing layout, to add images to; a new one when `root` holds none yet."""
        index = Path(root) / "index.json"
        if not index.exists():
            return cls.create(root)
        return cls(Path(root), list(json.loads(index.read_text()).get("manifests", [])))

    @classmethod
    def create(cls, root: Path) -> OciLayout:
        root = Path(root)
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        layout = cls(root)
        layout._write_index()
        return layout

    def add_blob(self, data: bytes, media_type: str, *, stored: bytes | None = None) -> dict[str, Any]:
        """Store `data` (or `stored` under data's digest) and return its descriptor."""
        digest = sha256_digest(data)
        (self.root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data if stored is None else stored)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_json(self, obj: dict[str, Any], media_type: str) -> dict[str, Any]:
        return self.add_blob(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(), media_type)

    def add_image(self, layers: Sequence[LayerSpec], *, labels: Mapping[str, str] | None = None,
                  arch: str = "amd64", os: str = "linux", variant: str | None = None) -> dict[str, Any]:
        """Write layers, config and manifest of one image; return the manifest descriptor (with platform)."""
        layer_descs, diff_ids = [], []
        for spec in layers:
            layer = _as_layer(spec)
            diff_ids.append(sha256_digest(layer.data))
            blob = gzip_bytes(layer.data) if layer.gzip else layer.data
            media = layer.media_type or (OCI_LAYER_GZIP if layer.gzip else OCI_LAYER_TAR)
            layer_descs.append(self.add_blob(blob, media, stored=layer.blob_override))
        config = {"architecture": arch, "os": os, "config": {"Labels": dict(labels or {})},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        if variant:
            config["variant"] = variant
        config_desc = self.add_json(config, OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": layer_descs}
        desc = self.add_json(manifest, OCI_MANIFEST)
        desc["platform"] = {"architecture": arch, "os": os, **({"variant": variant} if variant else {})}
        return desc

    def add_index(self, manifests: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Write an image index (multi-arch) over manifest descriptors; return its descriptor."""
        return self.add_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(manifests)}, OCI_INDEX)

    def tag(self, descriptor: dict[str, Any], ref_name: str | None = "latest") -> None:
        """List `descriptor` in index.json, named `ref_name` (None: no name annotation)."""
        entry = {k: v for k, v in descriptor.items() if k != "platform"}
        if ref_name:
            entry["annotations"] = {REF_NAME: ref_name}
        self.manifests = [m for m in self.manifests if (m.get("annotations") or {}).get(REF_NAME) != ref_name
                          or ref_name is None]
        self.manifests.append(entry)
        self._write_index()

    def _write_index(self) -> None:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.manifests}
        (self.root / "index.json").write_text(json.dumps(index, indent=2))


def write_catalog_layout(root: Path, files: Mapping[str, bytes], *, ref_name: str | None = "latest",
                         labels: Mapping[str, str] | None = None, arches: Sequence[str] = ("amd64",),
                         extra_layers: Sequence[LayerSpec] = ()) -> str:
    """A catalog image layout in one call; returns the digest index.json points at.

    `files` become one gzip layer (after `extra_layers`, which come first, like a base image).
    Default label: the catalog label pointing at /configs. With several `arches`, each arch gets
    its own manifest (same layers) and index.json points at an image index.
    """
    layout = OciLayout.create(root)
    labels = {CATALOG_LABEL: "/configs"} if labels is None else labels
    layers = [*extra_layers, files]
    descs = [layout.add_image(layers, labels=labels, arch=arch, variant="v8" if arch == "arm64" else None)
             for arch in arches]
    top = descs[0] if len(arches) == 1 else layout.add_index(descs)
    layout.tag(top, ref_name)
    return top["digest"]
