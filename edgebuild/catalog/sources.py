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

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import CatalogError, RegistryError
from ..reference import ImageReference, ReferenceError
from ..registry.layout import LayoutEndpoint, check_layout
from ..registry.manifest import MAX_CONFIG_BYTES, Descriptor, Manifest, choose_instance, parse_config
from .extract import LayerBlob, extract_configs
from .loader import load_catalog_dir
from .model import CATALOG_LABEL, Catalog

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class ImageSource(Protocol):
    """Read access to one repository's manifests and blobs (a registry repository or an OCI layout)."""

    def get_manifest(self, reference: str) -> Manifest:
        """The parsed manifest (registry.manifest) of a tag, a digest, or a layout's ref name."""
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


@contextmanager
def _as_catalog_error() -> Iterator[None]:
    """The shared OCI model (registry.manifest, registry.layout) raises RegistryError; a catalog load reports
    CatalogError with the same message and hint."""
    try:
        yield
    except RegistryError as exc:
        raise CatalogError(exc.message, exc.hint) from None


class OciLayoutSource:
    """An OCI image layout on disk as an ImageSource, read by the mirror's layout reader (registry.layout).

    References are digests, names from index.json's `org.opencontainers.image.ref.name`
    annotations, or "" for the layout's only entry.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        with _as_catalog_error():
            check_layout(self.root)
            self.layout = LayoutEndpoint(self.root, create=False)

    def names(self) -> list[str]:
        return self.layout.names()

    def entry_count(self) -> int:
        return len(self.layout.refs())

    def get_manifest(self, reference: str) -> Manifest:
        with _as_catalog_error():
            entry = self.layout.entry(reference)
            return self.layout.read_manifest(entry["digest"], entry.get("mediaType"), f"oci:{self.root}:{reference}")

    def open_blob(self, digest: str) -> BinaryIO:
        with _as_catalog_error():
            path = self.layout.blob_path(digest)  # also keeps the path inside blobs/
        try:
            return path.open("rb")
        except OSError:
            raise CatalogError(f"OCI layout {self.root} lacks blob {digest}",
                               "the layout is incomplete; copy the image again") from None


# --------------------------------------------------------------------------------------------------
# Resolving an image to its catalog layers


@dataclass(slots=True)
class ResolvedImage:
    """A catalog image with its manifest chosen for one platform and its config read."""

    digest: str  # of what the reference named (index or manifest)
    manifest_digest: str
    layers: list[Descriptor]
    labels: dict[str, str]


def resolve_image(source: ImageSource, reference: str, arch: str, name: str) -> ResolvedImage:
    """Read manifest (the linux/`arch` child of an index, chosen by registry.manifest), config and labels.

    `name` is for messages."""
    top = source.get_manifest(reference)  # a registry's own errors pass through: the caller adds its hint
    if _DIGEST_RE.match(reference) and top.digest != reference:
        raise CatalogError(f"{name}: manifest content digest is {top.digest}, not the requested {reference}")
    manifest = top
    if top.is_index:
        with _as_catalog_error():
            child = choose_instance(top, arch, f"{name}: the catalog image")
        manifest = source.get_manifest(child.digest)
        if manifest.digest != child.digest:
            raise CatalogError(f"{name}: {arch} manifest content digest is {manifest.digest}, expected {child.digest}")
        if manifest.is_index:
            raise CatalogError(f"{name}: the {arch} child of the index is an index itself",
                               "a catalog image index must list image manifests")
    config_desc, layers = manifest.blobs[0], manifest.blobs[1:]
    with source.open_blob(config_desc.digest) as fh:
        data = fh.read(MAX_CONFIG_BYTES + 1)
    with _as_catalog_error():
        config = parse_config(data, config_desc, f"{name}: config")
    if not layers:
        raise CatalogError(f"{name}: manifest {manifest.digest} lists no layers")
    labels = (config.get("config") or {}).get("Labels") or {}
    return ResolvedImage(top.digest, manifest.digest, layers, {str(k): str(v) for k, v in labels.items()})


def unpack_catalog(source: ImageSource, image: ResolvedImage, target: Path, name: str) -> Path:
    """Unpack the label's catalog directory of `image` into `target`; return the directory to load."""
    configs_dir = image.labels.get(CATALOG_LABEL)
    if not configs_dir:
        raise CatalogError(f"{name}: image has no label {CATALOG_LABEL}, so it is not a file-based catalog",
                           "sqlite-based index images (before OpenShift 4.11) are not supported; use a "
                           "file-based catalog image")
    blobs = [LayerBlob(layer.digest, layer.media_type, _opener(source, layer.digest), layer.size)
             for layer in image.layers]
    return extract_configs(blobs, target, configs_dir)


def _opener(source: ImageSource, digest: str) -> Callable[[], BinaryIO]:
    return lambda: source.open_blob(digest)


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
    if (path / "oci-layout").is_file():  # a layout; OciLayoutSource checks its version
        layout = OciLayoutSource(path)
        if not name and via_override and layout.entry_count() > 1:
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
    return ""  # entry("") explains the ambiguity


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
