"""Where a catalog comes from: a registry image, an OCI image layout (`oci://PATH`), or a directory.

A catalog image is read the same way from any `ImageSource`: manifest (the linux/<arch> child of an
index), config, the label `operators.operatorframework.io.index.configs.v1` naming the catalog
directory, then the layers, unpacked safely (extract.py) and loaded (loader.py). The registry
client is someone else's module: it is handed in as `image_source_factory`, so this module works
offline and plan tests can run from layouts on disk.

`--catalog-content REF=PATH` (the `overrides` argument) swaps the source of one catalog for a local
FBC directory or OCI layout without changing the reference the plan reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ..errors import CatalogError
from ..reference import ImageReference, ReferenceError
from .extract import LayerBlob, extract_configs
from .loader import load_catalog_dir
from .model import Catalog

CATALOG_LABEL = "operators.operatorframework.io.index.configs.v1"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_MAX_JSON_BLOB = 8 << 20  # manifests and configs are small; refuse to buffer a huge "config"


class ImageSource(Protocol):
    """Read access to one repository's manifests and blobs (a registry repository or an OCI layout)."""

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """Raw manifest bytes and media type for a tag or a digest."""
        ...

    def open_blob(self, digest: str) -> BinaryIO:
        """A stream of the blob's bytes; the caller verifies the sha256 while reading."""
        ...


ImageSourceFactory = Callable[[ImageReference], ImageSource]


@dataclass(slots=True)
class LoadedCatalog:
    """A loaded catalog and what planning needs to know about the image it came from.

    `digest` is what the reference resolved to (an index or a manifest; what a mirror would pin),
    `manifest_digest` the platform manifest whose layers were read. Both are None for a plain
    directory, which has no image.
    """

    catalog: Catalog
    digest: str | None
    manifest_digest: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    configs_dir: str | None = None  # the label value, e.g. "/configs"
    origin: str = ""  # "registry", "oci-layout" or "directory", and the path for local ones
    fbc_dir: Path | None = None  # where the FBC files are on disk (None once a temporary unpack is gone)


# --------------------------------------------------------------------------------------------------
# OCI image layout


class OciLayoutSource:
    """An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) as an ImageSource.

    References are digests, names from index.json's `org.opencontainers.image.ref.name`
    annotations, or "" for the layout's only entry.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        marker = self.root / "oci-layout"
        if not marker.is_file():
            raise CatalogError(f"{self.root} is not an OCI image layout: it has no oci-layout file",
                               "give the directory written by e.g. `skopeo copy ... oci:DIR:TAG`")
        try:
            version = json.loads(marker.read_text()).get("imageLayoutVersion")
            self.index = json.loads((self.root / "index.json").read_text())
        except (OSError, ValueError, AttributeError) as exc:
            raise CatalogError(f"{self.root}: unreadable OCI layout ({exc})",
                               "oci-layout and index.json must be JSON files") from None
        if version != "1.0.0":
            raise CatalogError(f"{self.root}: OCI layout version {version!r} is not supported (expected 1.0.0)")
        manifests = self.index.get("manifests") if isinstance(self.index, dict) else None
        if not isinstance(manifests, list):
            raise CatalogError(f"{self.root}/index.json has no 'manifests' list")
        self.entries: list[dict[str, Any]] = [m for m in manifests if isinstance(m, dict)]

    def names(self) -> list[str]:
        return sorted({(m.get("annotations") or {}).get(REF_NAME_ANNOTATION, "") for m in self.entries} - {""})

    def descriptor(self, reference: str) -> dict[str, Any]:
        """The index.json entry for a name, a digest, or "" (the only entry)."""
        if _DIGEST_RE.match(reference):
            for entry in self.entries:
                if entry.get("digest") == reference:
                    return entry
            return {"digest": reference, "mediaType": ""}
        if not reference:
            if len(self.entries) == 1:
                return self.entries[0]
            if not self.entries:
                raise CatalogError(f"OCI layout {self.root} holds no image (index.json lists no manifests)")
            raise CatalogError(f"OCI layout {self.root} holds {len(self.entries)} images; say which one",
                               f"use oci://{self.root}:NAME with NAME one of: {', '.join(self.names()) or '(unnamed)'}")
        for entry in self.entries:
            if (entry.get("annotations") or {}).get(REF_NAME_ANNOTATION) == reference:
                return entry
        raise CatalogError(f"OCI layout {self.root} has no image named {reference!r}",
                           f"names in its index.json: {', '.join(self.names()) or '(none)'}")

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        desc = self.descriptor(reference)
        digest = str(desc.get("digest", ""))
        with self.open_blob(digest) as fh:
            data = _read_verified(fh, digest, f"manifest {digest} in {self.root}")
        media_type = str(desc.get("mediaType") or "") or _sniff_media_type(data)
        return data, media_type

    def open_blob(self, digest: str) -> BinaryIO:
        if not _DIGEST_RE.match(digest):  # also keeps the path inside blobs/
            raise CatalogError(f"OCI layout {self.root}: unsupported or malformed digest {digest!r}",
                               "only sha256 digests are supported")
        path = self.root / "blobs" / "sha256" / digest.split(":", 1)[1]
        try:
            return path.open("rb")
        except OSError:
            raise CatalogError(f"OCI layout {self.root} lacks blob {digest}",
                               "the layout is incomplete; copy the image again") from None


def _sniff_media_type(data: bytes) -> str:
    try:
        doc = json.loads(data)
    except ValueError:
        return ""
    if isinstance(doc, dict):
        if doc.get("mediaType"):
            return str(doc["mediaType"])
        return OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    return ""


def _read_verified(fh: BinaryIO, digest: str, what: str) -> bytes:
    data = fh.read(_MAX_JSON_BLOB + 1)
    if len(data) > _MAX_JSON_BLOB:
        raise CatalogError(f"{what} is larger than {_MAX_JSON_BLOB} bytes; that is not a manifest or config")
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise CatalogError(f"{what}: content digest is {actual}, expected {digest}",
                           "the image is corrupt; copy it again")
    return data


# --------------------------------------------------------------------------------------------------
# Resolving an image to its catalog layers


@dataclass(slots=True)
class ResolvedImage:
    """A catalog image with its manifest chosen for one platform and its config read."""

    digest: str  # of what the reference named (index or manifest)
    manifest_digest: str
    layers: list[dict[str, Any]]
    labels: dict[str, str]


def resolve_image(source: ImageSource, reference: str, arch: str, name: str) -> ResolvedImage:
    """Read manifest (the linux/`arch` child of an index), then config and labels. `name` is for messages."""
    raw, media_type = source.get_manifest(reference)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if _DIGEST_RE.match(reference) and digest != reference:
        raise CatalogError(f"{name}: manifest content digest is {digest}, not the requested {reference}")
    doc = _json_doc(raw, f"{name}: manifest")
    media_type = media_type or str(doc.get("mediaType") or "") or _sniff_media_type(raw)
    manifest_digest = digest
    if media_type in INDEX_TYPES or (not media_type and "manifests" in doc):
        child = _pick_platform(doc, arch, name)
        manifest_digest = str(child.get("digest"))
        raw, media_type = source.get_manifest(manifest_digest)
        actual = "sha256:" + hashlib.sha256(raw).hexdigest()
        if actual != manifest_digest:
            raise CatalogError(f"{name}: {arch} manifest content digest is {actual}, expected {manifest_digest}")
        doc = _json_doc(raw, f"{name}: {arch} manifest")
    if media_type and media_type not in MANIFEST_TYPES and "layers" not in doc:
        raise CatalogError(f"{name}: unsupported manifest type {media_type!r}",
                           "edgebuild reads OCI and Docker v2 schema 2 images")
    config_desc = doc.get("config") or {}
    config_digest = str(config_desc.get("digest", ""))
    with source.open_blob(config_digest) as fh:
        config = _json_doc(_read_verified(fh, config_digest, f"{name}: config {config_digest}"), f"{name}: config")
    labels = (config.get("config") or {}).get("Labels") or {}
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise CatalogError(f"{name}: manifest {manifest_digest} lists no layers")
    return ResolvedImage(digest, manifest_digest, layers, {str(k): str(v) for k, v in labels.items()})


def _json_doc(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise CatalogError(f"{what} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CatalogError(f"{what} is not a JSON object")
    return doc


def _pick_platform(index: dict[str, Any], arch: str, name: str) -> dict[str, Any]:
    children = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    matches = [m for m in children if (m.get("platform") or {}).get("architecture") == arch
               and (m.get("platform") or {}).get("os", "linux") == "linux"]
    if matches:
        return matches[0]
    if len(children) == 1 and not children[0].get("platform"):
        return children[0]
    have = sorted(f"{(m.get('platform') or {}).get('os', '?')}/{(m.get('platform') or {}).get('architecture', '?')}"
                  for m in children)
    raise CatalogError(f"{name}: the catalog image has no linux/{arch} manifest (it has: {', '.join(have) or 'none'})",
                       "pass --arch with one of the listed architectures")


def unpack_catalog(source: ImageSource, image: ResolvedImage, target: Path, name: str) -> Path:
    """Unpack the label's catalog directory of `image` into `target`; return the directory to load."""
    configs_dir = image.labels.get(CATALOG_LABEL)
    if not configs_dir:
        raise CatalogError(f"{name}: image has no label {CATALOG_LABEL}, so it is not a file-based catalog",
                           "sqlite-based index images (before OpenShift 4.11) are not supported; use a "
                           "file-based catalog image")
    blobs = []
    for layer in image.layers:
        digest = str(layer.get("digest", ""))
        if not _DIGEST_RE.match(digest):
            raise CatalogError(f"{name}: layer with unsupported digest {digest!r}", "only sha256 digests are supported")
        size = layer.get("size")
        blobs.append(LayerBlob(digest, str(layer.get("mediaType") or ""),
                               (lambda d=digest: source.open_blob(d)), size if isinstance(size, int) else None))
    return extract_configs(blobs, target, configs_dir)


# --------------------------------------------------------------------------------------------------
# Entry points


def open_catalog(ref: str, *, overrides: Mapping[str, str] | None = None,
                 image_source_factory: ImageSourceFactory | None = None, workdir: Path | None = None,
                 arch: str = "amd64") -> Catalog:
    """Load the catalog a `mirror.operators[].catalog` value names (see open_catalog_image)."""
    return open_catalog_image(ref, overrides=overrides, image_source_factory=image_source_factory,
                              workdir=workdir, arch=arch).catalog


def open_catalog_image(ref: str, *, overrides: Mapping[str, str] | None = None,
                       image_source_factory: ImageSourceFactory | None = None, workdir: Path | None = None,
                       arch: str = "amd64") -> LoadedCatalog:
    """Load a catalog from `oci://PATH[:NAME]`, a registry reference, or the override given for `ref`.

    A `ref` that is a path (starting with /, ./ or ../) is read like an override: an FBC directory
    or an OCI layout.

    With `workdir`, unpacked catalogs are kept under `workdir/catalogs/<manifest hex>` and reused
    the next time the same manifest is asked for; without it, a temporary directory is used and removed.
    """
    override = _find_override(ref, overrides or {})
    if override is not None:
        return _open_local(ref, override, workdir, arch, via_override=True)
    if ref.startswith("oci://"):
        return _open_local(ref, ref.removeprefix("oci://"), workdir, arch, via_override=False)
    if ref.startswith(("/", "./", "../")):  # a local path; never a registry reference
        return _open_local(ref, ref, workdir, arch, via_override=True)
    try:
        image_ref = ImageReference.parse(ref)
    except ReferenceError as exc:
        raise CatalogError(f"catalog {ref!r}: {exc}",
                           "use a registry reference, oci://PATH, or --catalog-content REF=PATH") from None
    if image_source_factory is None:
        raise CatalogError(f"catalog {ref}: loading from a registry needs network access, which is not available here",
                           f"pass the catalog from disk with --catalog-content {ref}=PATH (an FBC directory or an "
                           "OCI layout, e.g. from `skopeo copy docker://REF oci:PATH`)")
    source = image_source_factory(image_ref)
    reference = image_ref.digest or image_ref.tag or "latest"
    return _open_image(ref, source, reference, workdir, arch, origin="registry")


def _find_override(ref: str, overrides: Mapping[str, str]) -> str | None:
    """The override path for `ref`, matching exactly or by normalized reference (docker.io/library/...)."""
    if ref in overrides:
        return overrides[ref]
    wanted = _normalized(ref)
    for key, path in overrides.items():
        if wanted is not None and _normalized(key) == wanted:
            return path
    return None


def _normalized(ref: str) -> str | None:
    if ref.startswith("oci://"):
        return "oci://" + os.path.normpath(ref.removeprefix("oci://"))
    try:
        return str(ImageReference.parse(ref.strip()))
    except ReferenceError:
        return None


def _open_local(ref: str, spec: str, workdir: Path | None, arch: str, *, via_override: bool) -> LoadedCatalog:
    """An FBC directory (overrides only) or an OCI layout at `spec`, optionally `PATH:NAME`."""
    path, name = Path(spec), ""
    if not path.exists() and ":" in spec:
        head, _, tail = spec.rpartition(":")
        if Path(head).is_dir() and "/" not in tail:
            path, name = Path(head), tail
    what = f"--catalog-content {ref}={spec}" if via_override else ref
    if not path.is_dir():
        raise CatalogError(f"{what}: {path} does not exist or is not a directory",
                           "give an FBC directory or an OCI image layout directory")
    if (path / "oci-layout").is_file():
        layout = OciLayoutSource(path)
        if not name and via_override and len(layout.entries) > 1:
            name = _layout_name_for(ref, layout)
        return _open_image(ref, layout, name, workdir, arch, origin=f"oci-layout {path}")
    if not via_override:
        raise CatalogError(f"{ref}: {path} is not an OCI image layout (no oci-layout file)",
                           f"for a directory of FBC files use --catalog-content {ref}={path}")
    catalog = load_catalog_dir(path, source=ref)
    return LoadedCatalog(catalog, None, None, {}, None, f"directory {path}", fbc_dir=path)


def _layout_name_for(ref: str, layout: OciLayoutSource) -> str:
    """In a layout holding several images, the one named like the reference (its tag, or the whole ref)."""
    names = layout.names()
    try:
        tag = ImageReference.parse(ref).tag
    except ReferenceError:
        tag = None
    for candidate in (ref, tag):
        if candidate and candidate in names:
            return candidate
    return ""  # descriptor("") explains the ambiguity


def _open_image(ref: str, source: ImageSource, reference: str, workdir: Path | None, arch: str,
                origin: str) -> LoadedCatalog:
    image = resolve_image(source, reference, arch, ref)
    configs_dir = image.labels.get(CATALOG_LABEL)
    kept: Path | None = None
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="edgebuild-catalog-") as tmp:
            root = unpack_catalog(source, image, Path(tmp) / "rootfs", ref)
            catalog = load_catalog_dir(root, source=ref)
    else:
        kept = _cached_unpack(source, image, Path(workdir), ref)
        catalog = load_catalog_dir(kept, source=ref)
    return LoadedCatalog(catalog, image.digest, image.manifest_digest, image.labels, configs_dir, origin,
                         fbc_dir=kept)


def _cached_unpack(source: ImageSource, image: ResolvedImage, workdir: Path, name: str) -> Path:
    """Unpack once per manifest digest: a finished unpack is renamed into place, so a crash leaves no half cache."""
    base = workdir / "catalogs"
    final = base / image.manifest_digest.split(":", 1)[1]
    marker = final / "configs-path"
    if marker.is_file():
        cached = final / marker.read_text().strip()
        if cached.is_dir():
            return cached
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=base))
    try:
        root = unpack_catalog(source, image, staging / "rootfs", name)
        (staging / "configs-path").write_text(root.relative_to(staging).as_posix())
        if marker.is_file():  # another load of the same image finished first: keep its copy
            shutil.rmtree(staging, ignore_errors=True)
            return final / marker.read_text().strip()
        if final.exists():
            shutil.rmtree(final)  # a leftover without its marker
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final / root.relative_to(staging)
