"""Load a file-based catalog from a directory of JSON streams and YAML files.

Blobs are read one at a time and reduced to the model at once (see model.py), so memory follows
the size of the model, not of the files. YAML scalars are all read as strings or plain numbers:
timestamps such as `createdAt` stay exactly the text they were.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from ..errors import CatalogError
from .model import (GVK, SCHEMA_BUNDLE, SCHEMA_CHANNEL, SCHEMA_DEPRECATIONS, SCHEMA_PACKAGE, Bundle, Catalog,
                    Channel, ChannelEntry, Package, PackageRequirement, RelatedImage)

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FbcYamlLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe YAML loader that leaves timestamps as strings (FBC has `createdAt: 2024-01-01T…`)."""


_FbcYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_FbcYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _BaseLoader.construct_yaml_str)


def iter_json_stream(text: str, origin: str) -> Iterator[dict[str, Any]]:
    """Yield the JSON values of a stream of concatenated JSON objects (the format opm writes)."""
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{origin}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        if not isinstance(value, dict):
            raise CatalogError(f"{origin}: expected a JSON object, found {type(value).__name__}")
        yield value


def iter_yaml_stream(stream: Any, origin: str) -> Iterator[dict[str, Any]]:
    try:
        for doc in yaml.load_all(stream, Loader=_FbcYamlLoader):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise CatalogError(f"{origin}: expected a mapping document, found {type(doc).__name__}")
            yield doc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{origin}: invalid YAML: {exc}") from None


def iter_file_blobs(path: Path) -> Iterator[dict[str, Any]]:
    """Blobs of one catalog file: .json (a JSON stream) or .yaml/.yml (a YAML stream)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        yield from iter_json_stream(path.read_text(encoding="utf-8"), str(path))
    elif suffix in (".yaml", ".yml"):
        with path.open("rb") as fh:
            yield from iter_yaml_stream(fh, str(path))


def iter_dir_blobs(root: Path) -> Iterator[dict[str, Any]]:
    """Every blob under a catalog directory, in a stable (sorted) file order, as opm walks it.

    Symlinks are not followed out of the tree, and hidden files are skipped (as opm's walker does
    with `.indexignore`-style conventions: dot files are never catalog content).
    """
    if not root.is_dir():
        raise CatalogError(f"catalog directory {root} does not exist or is not a directory")
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                raise CatalogError(f"{path}: symlink points outside the catalog directory")
            yield from iter_file_blobs(path)


class CatalogBuilder:
    """Builds a Catalog from blobs arriving in any order (bundles may precede their package)."""

    def __init__(self, source: str = "") -> None:
        self.catalog = Catalog(source=source)

    def _package(self, name: str) -> Package:
        pkg = self.catalog.packages.get(name)
        if pkg is None:
            pkg = self.catalog.packages[name] = Package(name=name, default_channel=None)
        return pkg

    def add(self, blob: dict[str, Any]) -> None:
        schema = blob.get("schema")
        if schema == SCHEMA_PACKAGE:
            name = _required_str(blob, "name", self.catalog.source)
            pkg = self._package(name)
            pkg.default_channel = blob.get("defaultChannel") or None
            pkg.description = str(blob.get("description") or "")
        elif schema == SCHEMA_CHANNEL:
            self._add_channel(blob)
        elif schema == SCHEMA_BUNDLE:
            bundle = bundle_from_blob(blob, self.catalog.source)
            self._package(bundle.package).bundles[bundle.name] = bundle
        elif schema == SCHEMA_DEPRECATIONS:
            self.catalog.deprecations.append(blob)
        else:
            self.catalog.others.append(blob)

    def _add_channel(self, blob: dict[str, Any]) -> None:
        name = _required_str(blob, "name", self.catalog.source)
        package = _required_str(blob, "package", self.catalog.source)
        entries = []
        for raw in blob.get("entries") or []:
            entries.append(ChannelEntry(
                name=str(raw.get("name", "")),
                replaces=raw.get("replaces") or None,
                skips=tuple(raw.get("skips") or ()),
                skip_range=raw.get("skipRange") or None,
            ))
        properties = list(blob.get("properties") or [])
        priority = None
        for prop in properties:
            if prop.get("type") == "olm.channel":
                value = prop.get("value") or {}
                if isinstance(value.get("priority"), int):
                    priority = value["priority"]
        self._package(package).channels[name] = Channel(name, package, entries, priority, properties)


def _required_str(blob: dict[str, Any], key: str, origin: str) -> str:
    value = blob.get(key)
    if not isinstance(value, str) or not value:
        raise CatalogError(f"{origin}: {blob.get('schema')} blob without a '{key}': {str(blob)[:200]}")
    return value


def bundle_from_blob(blob: dict[str, Any], origin: str = "") -> Bundle:
    """Reduce an olm.bundle blob to a Bundle, reading version, dependencies, GVKs and installModes."""
    name = _required_str(blob, "name", origin)
    bundle = Bundle(name=name, package=_required_str(blob, "package", origin),
                    image=str(blob.get("image") or ""), version="")
    for prop in blob.get("properties") or []:
        ptype, value = prop.get("type"), prop.get("value")
        if not isinstance(value, (dict, list, str)):
            continue
        if ptype == "olm.package" and isinstance(value, dict):
            bundle.version = str(value.get("version") or "")
        elif ptype == "olm.package.required" and isinstance(value, dict):
            bundle.required_packages.append(PackageRequirement(str(value.get("packageName", "")),
                                                               str(value.get("versionRange") or "")))
        elif ptype == "olm.gvk" and isinstance(value, dict):
            bundle.provided_gvks.append(GVK(value.get("group", ""), value.get("version", ""), value.get("kind", "")))
        elif ptype == "olm.gvk.required" and isinstance(value, dict):
            bundle.required_gvks.append(GVK(value.get("group", ""), value.get("version", ""), value.get("kind", "")))
        elif ptype == "olm.csv.metadata" and isinstance(value, dict):
            modes = value.get("installModes")
            if modes:
                bundle.install_modes = _install_modes(modes)
        elif ptype == "olm.bundle.object" and bundle.install_modes is None and isinstance(value, dict):
            bundle.install_modes = _install_modes_from_object(value.get("data"))
    for rel in blob.get("relatedImages") or []:
        image = rel.get("image") if isinstance(rel, dict) else None
        if image:
            bundle.related_images.append(RelatedImage(str(rel.get("name") or ""), str(image)))
    return bundle


def _install_modes(modes: Iterable[Any]) -> dict[str, bool]:
    return {str(m.get("type")): bool(m.get("supported")) for m in modes if isinstance(m, dict)}


def _install_modes_from_object(data: Any) -> dict[str, bool] | None:
    """installModes of a CSV carried base64-encoded in an olm.bundle.object property, if it is one."""
    if not isinstance(data, str):
        return None
    try:
        obj = json.loads(base64.b64decode(data))
    except (ValueError, TypeError):
        return None
    if not isinstance(obj, dict) or obj.get("kind") != "ClusterServiceVersion":
        return None
    modes = (obj.get("spec") or {}).get("installModes")
    return _install_modes(modes) if modes else None


def build_catalog(blobs: Iterable[dict[str, Any]], source: str = "") -> Catalog:
    builder = CatalogBuilder(source)
    for blob in blobs:
        builder.add(blob)
    return builder.catalog


def load_catalog_dir(root: str | os.PathLike[str]) -> Catalog:
    """Load every catalog file below `root` into one Catalog."""
    path = Path(root)
    return build_catalog(iter_dir_blobs(path), source=str(path))
