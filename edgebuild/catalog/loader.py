"""Load a file-based catalog from a directory of JSON streams and YAML files.

Catalog images ship JSON streams of hundreds of MB. They are read in chunks and decoded one blob
at a time; each blob is reduced to the model at once (see model.py) and dropped, so memory follows
the size of the model, not of the files. YAML scalars are all read as strings or plain numbers:
timestamps such as `createdAt` stay exactly the text they were.

Errors name the file and the line where the offending blob starts, so a user can open it.
"""

from __future__ import annotations

import base64
import codecs
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from ..errors import CatalogError
from ..yamlnodes import compose_documents
from .model import (
    GVK,
    SCHEMA_BUNDLE,
    SCHEMA_CHANNEL,
    SCHEMA_DEPRECATIONS,
    SCHEMA_PACKAGE,
    Bundle,
    Catalog,
    Channel,
    ChannelEntry,
    Package,
    PackageRequirement,
    RelatedImage,
)

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CATALOG_SUFFIXES = (".json", ".yaml", ".yml")
_READ_CHARS = 1 << 20  # first read size; grows while one blob does not fit
_WHITESPACE_RE = re.compile(r"[ \t\r\n]*")
# A JSON decode error this close to the end of the buffer may just mean the blob continues.
_TRUNCATION_MARGIN = 32


class _FbcYamlLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe YAML loader that leaves timestamps as strings (FBC has `createdAt: 2024-01-01T…`)."""


_FbcYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_FbcYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _BaseLoader.construct_yaml_str)


# --------------------------------------------------------------------------------------------------
# Reading blobs


def iter_json_file(stream: BinaryIO, origin: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, blob) for each object of a JSON stream read incrementally from a binary file.

    Only the current blob and one read buffer are held, never the whole file.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()

    def read(size: int) -> str:
        while True:
            data = stream.read(size)
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                raise CatalogError(f"{origin}: not UTF-8 text ({exc.reason})",
                                   "catalog files must be UTF-8 JSON or YAML") from None
            if text or not data:
                return text

    yield from _iter_json_text(read, origin)


def _iter_json_text(read: Callable[[int], str], origin: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Decode objects from text returned by `read(size)` ("" at the end), one buffer at a time.

    While a blob does not fit in the buffer, the buffer keeps the blob's start and at least doubles,
    so a blob is decoded at most a few times whatever its size. `line` counts the newlines consumed
    so far, to report where each blob starts.
    """
    raw_decode = json.JSONDecoder().raw_decode
    buf, pos, eof = "", 0, False
    line, mark = 1, 0  # `line` is the line number at buf[mark]
    while True:
        pos = _WHITESPACE_RE.match(buf, pos).end()  # type: ignore[union-attr]
        line += buf.count("\n", mark, pos)
        mark = pos
        if pos >= len(buf):
            if eof:
                return
            buf, pos, mark = read(_READ_CHARS), 0, 0
            eof = not buf
            continue
        try:
            value, end = raw_decode(buf, pos)
        except RecursionError:  # the C decoder recurses per level, guarded by the interpreter's limit
            raise CatalogError(f"{origin}:{line}: JSON nested deeper than {sys.getrecursionlimit()} levels",
                               "no catalog needs such nesting; the file is malformed or hostile") from None
        except json.JSONDecodeError as exc:
            unterminated = exc.msg.startswith("Unterminated string")
            if eof or not (unterminated or len(buf) - exc.pos < _TRUNCATION_MARGIN):
                err_line = line + buf.count("\n", pos, exc.pos)
                truncated = eof and (unterminated or exc.pos >= len(buf.rstrip()))
                what = "truncated JSON (the file ends inside a value)" if truncated else f"invalid JSON: {exc.msg}"
                raise CatalogError(f"{origin}:{err_line}: {what}",
                                   "re-create the catalog file, e.g. with `opm render`") from None
            # The blob continues past the buffer: keep its start, read at least as much again.
            buf, pos, mark = buf[pos:], 0, 0
            more = read(max(_READ_CHARS, len(buf)))
            eof = not more
            buf += more
            continue
        if not isinstance(value, dict):
            raise CatalogError(f"{origin}:{line}: expected a JSON object, found {type(value).__name__}")
        yield line, value
        pos = end


def iter_yaml_stream(stream: Any, origin: str) -> Iterator[dict[str, Any]]:
    """Yield the mapping documents of a YAML stream (timestamps kept as strings)."""
    for _line, doc in iter_yaml_docs(stream, origin):
        yield doc


def iter_yaml_docs(stream: Any, origin: str, *, for_model: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, document) for each mapping document of a YAML stream, one document in memory at a time.

    `for_model` skips building the parts of bundles the model never reads (most of
    `olm.csv.metadata`, which is about three quarters of a real catalog's YAML nodes).
    """
    loader = _FbcYamlLoader(stream)
    try:
        for node in compose_documents(loader):  # no recursion: nesting depth is the input's choice
            line = node.start_mark.line + 1 if node is not None else 0
            if for_model and isinstance(node, yaml.MappingNode):
                _prune_bundle_node(node)
            doc = loader.construct_document(node) if node is not None else None
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise CatalogError(f"{origin}:{line}: expected a mapping document, found {type(doc).__name__}")
            yield line, doc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{origin}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _scalar_items(node: yaml.MappingNode) -> Iterator[tuple[str, yaml.Node]]:
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode):
            yield key.value, value


def _prune_bundle_node(doc: yaml.MappingNode) -> None:
    """In an olm.bundle document node, keep only `installModes` and `displayName` of olm.csv.metadata."""
    items = dict(_scalar_items(doc))
    schema, properties = items.get("schema"), items.get("properties")
    if not (isinstance(schema, yaml.ScalarNode) and schema.value == SCHEMA_BUNDLE
            and isinstance(properties, yaml.SequenceNode)):
        return
    for prop in properties.value:
        if not isinstance(prop, yaml.MappingNode):
            continue
        fields = dict(_scalar_items(prop))
        ptype, value = fields.get("type"), fields.get("value")
        if (isinstance(ptype, yaml.ScalarNode) and ptype.value == "olm.csv.metadata"
                and isinstance(value, yaml.MappingNode)):
            value.value = [(k, v) for k, v in value.value
                           if isinstance(k, yaml.ScalarNode) and k.value in ("installModes", "displayName")]


def iter_file_blobs_located(path: Path, *, for_model: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, blob) of one catalog file: .json (a JSON stream) or .yaml/.yml (a YAML stream).

    `for_model`: the blobs are only reduced to the model, so YAML may skip what the model ignores.
    """
    suffix = path.suffix.lower()
    if suffix not in CATALOG_SUFFIXES:
        return
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog file: {exc.strerror}") from None
    with fh:
        if suffix == ".json":
            yield from iter_json_file(fh, str(path))
        else:
            yield from iter_yaml_docs(fh, str(path), for_model=for_model)


def iter_file_blobs(path: Path) -> Iterator[dict[str, Any]]:
    """Blobs of one catalog file: .json (a JSON stream) or .yaml/.yml (a YAML stream)."""
    for _line, blob in iter_file_blobs_located(path):
        yield blob


def iter_catalog_files(root: Path) -> Iterator[Path]:
    """Catalog files under a directory in a stable (sorted) order, as opm walks it.

    Symlinks are not followed out of the tree, and hidden files are skipped (dot files are never
    catalog content; opm skips them too).
    """
    if not root.is_dir():
        raise CatalogError(f"catalog directory {root} does not exist or is not a directory",
                           "give a directory that holds the catalog's JSON or YAML files")
    real_root = root.resolve()
    for dirpath, filenames in _walk_sorted(root):
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(CATALOG_SUFFIXES):
                continue
            path = Path(dirpath) / name
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                raise CatalogError(f"{path}: symlink points outside the catalog directory {root}",
                                   "replace the link by the file it points to")
            yield path


def _walk_sorted(root: Path) -> Iterator[tuple[str, list[str]]]:
    """(directory, its sorted file names), top-down in sorted order, hidden directories skipped.

    os.walk in Python 3.11 recurses once per level; this keeps an explicit stack, so a tree of
    thousands of nested directories costs memory, not the call stack. Symlinked directories are
    not entered (as os.walk without followlinks)."""
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise CatalogError(f"{directory}: cannot list catalog directory: {exc.strerror}") from None
        files, subdirs = [], []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith("."):
                    subdirs.append(entry.path)
            elif not entry.is_dir():  # a link to a directory is not entered, nor read as a file
                files.append(entry.name)
        yield directory, files
        stack.extend(reversed(subdirs))


def iter_dir_blobs(root: Path) -> Iterator[dict[str, Any]]:
    """Every blob under a catalog directory, in a stable (sorted) file order."""
    for path in iter_catalog_files(Path(root)):
        yield from iter_file_blobs(path)


# --------------------------------------------------------------------------------------------------
# Reducing blobs to the model


class CatalogBuilder:
    """Builds a Catalog from blobs arriving in any order (bundles may precede their package)."""

    def __init__(self, source: str = "") -> None:
        self.catalog = Catalog(source=source)

    def _package(self, name: str) -> Package:
        pkg = self.catalog.packages.get(name)
        if pkg is None:
            pkg = self.catalog.packages[name] = Package(name=name, default_channel=None)
        return pkg

    def add(self, blob: dict[str, Any], origin: str | None = None) -> None:
        """Reduce one blob into the catalog; `origin` (file:line) names it in errors."""
        where = origin or self.catalog.source
        try:
            self._add(blob, where)
        except CatalogError:
            raise
        except (AttributeError, TypeError, ValueError) as exc:
            # A blob whose fields have the wrong shape (a string where a list belongs, ...).
            raise CatalogError(f"{where}: malformed {blob.get('schema')} blob {blob.get('name')!r}: {exc}",
                               "check the blob against the FBC schema (opm validate)") from None

    def _add(self, blob: dict[str, Any], where: str) -> None:
        schema = blob.get("schema")
        if schema == SCHEMA_PACKAGE:
            name = _required_str(blob, "name", where)
            pkg = self._package(name)
            pkg.default_channel = blob.get("defaultChannel") or None
            pkg.description = str(blob.get("description") or "")
        elif schema == SCHEMA_CHANNEL:
            self._add_channel(blob, where)
        elif schema == SCHEMA_BUNDLE:
            bundle = bundle_from_blob(blob, where)
            self._package(bundle.package).bundles[bundle.name] = bundle
        elif schema == SCHEMA_DEPRECATIONS:
            self.catalog.deprecations.append(blob)
        elif isinstance(schema, str) and schema:
            self.catalog.others.append(blob)
        else:
            raise CatalogError(f"{where}: blob without a 'schema' field: {str(blob)[:200]}",
                               "every FBC blob needs a schema such as olm.package, olm.channel or olm.bundle")

    def _add_channel(self, blob: dict[str, Any], where: str) -> None:
        name = _required_str(blob, "name", where)
        package = _required_str(blob, "package", where)
        entries = []
        for raw in _list(blob, "entries", where):
            if not isinstance(raw, dict):
                raise CatalogError(f"{where}: channel {name!r}: an entry is not a mapping: {str(raw)[:100]}")
            entries.append(ChannelEntry(
                name=str(raw.get("name", "")),
                replaces=raw.get("replaces") or None,
                skips=tuple(raw.get("skips") or ()),
                skip_range=raw.get("skipRange") or None,
            ))
        properties = list(_list(blob, "properties", where))
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
        raise CatalogError(f"{origin}: {blob.get('schema')} blob without a '{key}': {str(blob)[:200]}",
                           f"every {blob.get('schema')} blob needs a non-empty '{key}'")
    return value


def _list(blob: dict[str, Any], key: str, origin: str) -> list[Any]:
    value = blob.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CatalogError(f"{origin}: {blob.get('schema')} blob {blob.get('name')!r}: '{key}' must be a list, "
                           f"found {type(value).__name__}")
    return value


def bundle_from_blob(blob: dict[str, Any], origin: str = "") -> Bundle:
    """Reduce an olm.bundle blob to a Bundle, reading version, dependencies, GVKs and installModes.

    installModes come from `olm.csv.metadata` when present; only otherwise is the (large,
    base64-encoded) CSV in `olm.bundle.object` decoded, since that is the costly part of loading.
    """
    name = _required_str(blob, "name", origin)
    bundle = Bundle(name=name, package=_required_str(blob, "package", origin),
                    image=str(blob.get("image") or ""), version="")
    objects: list[Any] = []
    for prop in _list(blob, "properties", origin):
        if not isinstance(prop, dict):
            raise CatalogError(f"{origin}: bundle {name!r}: a property is not a mapping: {str(prop)[:100]}")
        ptype, value = prop.get("type"), prop.get("value")
        if not isinstance(value, dict):
            continue
        if ptype == "olm.package":
            bundle.version = str(value.get("version") or "")
        elif ptype == "olm.gvk":
            bundle.provided_gvks.append(GVK(value.get("group", ""), value.get("version", ""), value.get("kind", "")))
        elif ptype == "olm.package.required":
            bundle.required_packages.append(PackageRequirement(str(value.get("packageName", "")),
                                                               str(value.get("versionRange") or "")))
        elif ptype == "olm.gvk.required":
            bundle.required_gvks.append(GVK(value.get("group", ""), value.get("version", ""), value.get("kind", "")))
        elif ptype == "olm.csv.metadata":
            modes = value.get("installModes")
            bundle.display_name = str(value.get("displayName") or "")
            if modes:
                bundle.install_modes = _install_modes(modes)
        elif ptype == "olm.bundle.object":
            objects.append(value.get("data"))
    if bundle.install_modes is None:
        for data in objects:
            bundle.install_modes = _install_modes_from_object(data)
            if bundle.install_modes is not None:
                break
    for rel in _list(blob, "relatedImages", origin):
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
    return _install_modes(modes) if isinstance(modes, list) and modes else None


# --------------------------------------------------------------------------------------------------
# Entry points


def build_catalog(blobs: Iterable[dict[str, Any]], source: str = "") -> Catalog:
    """A Catalog from blobs in any order."""
    builder = CatalogBuilder(source)
    for blob in blobs:
        builder.add(blob)
    return builder.catalog


def load_catalog_dir(root: str | os.PathLike[str], source: str | None = None) -> Catalog:
    """Load every catalog file below `root` into one Catalog.

    `source` names the catalog in messages (an image reference); it defaults to the directory.
    """
    path = Path(root)
    builder = CatalogBuilder(source or str(path))
    for file in iter_catalog_files(path):
        for line, blob in iter_file_blobs_located(file, for_model=True):
            builder.add(blob, f"{file}:{line}")
    return builder.catalog
