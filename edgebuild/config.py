"""ImageSetConfiguration (mirror.openshift.io/v1alpha2 and v2alpha1) -> a typed, validated model.

The YAML is read as a node tree, not as plain dicts, so that every error can name the file, the
line and the field path (`mirror.operators[0].packages[1].minVersion`). All errors of one file are
collected and reported together; any of them makes the configuration invalid (exit code 2).

`apiVersion` selects the semantics: v1alpha2 -> oc-mirror v1 rules, v2alpha1 -> oc-mirror v2 rules.
Fields oc-mirror accepts but edgebuild does not act on yet are accepted, validated and reported as
warnings (`ImageSetConfig.warnings`), never silently dropped.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .blocked_patterns import GoRegexpError, compile_go_regexp
from .errors import ConfigError, ConfigErrors
from .fsutil import path_length_problem
from .reference import ImageReference, ReferenceError
from .semver import Version, VersionError
from .yamlnodes import compose_documents

API_V1 = "mirror.openshift.io/v1alpha2"
API_V2 = "mirror.openshift.io/v2alpha1"
KIND = "ImageSetConfiguration"
ARCHITECTURES = ("amd64", "arm64", "ppc64le", "s390x", "multi")
_TARGET_CATALOG_RE = re.compile(r"^([a-z0-9]+((?:[._]|__|[-]*)[a-z0-9]+)*)(/([a-z0-9]+((?:[._]|__|[-]*)[a-z0-9]+)*))*$")

Semantics = Literal["v1", "v2"]


@dataclass(slots=True)
class ChannelSpec:
    name: str
    min_version: str | None = None
    max_version: str | None = None
    min_bundle: str | None = None  # v1alpha2 only
    line: int | None = None


@dataclass(slots=True)
class PackageSpec:
    name: str
    channels: list[ChannelSpec] = field(default_factory=list)
    min_version: str | None = None
    max_version: str | None = None
    min_bundle: str | None = None  # v1alpha2 only
    default_channel: str | None = None
    line: int | None = None


@dataclass(slots=True)
class OperatorSpec:
    catalog: str
    packages: list[PackageSpec] = field(default_factory=list)
    full: bool = False
    skip_dependencies: bool = False
    target_catalog: str | None = None
    target_name: str | None = None  # v1alpha2 only, deprecated
    target_tag: str | None = None
    target_catalog_source_template: str | None = None  # v2alpha1 only
    platforms: list[str] = field(default_factory=list)  # v2alpha1 "os/arch" strings
    line: int | None = None

    @property
    def is_oci(self) -> bool:
        return self.catalog.startswith("oci://")


@dataclass(slots=True)
class AdditionalImage:
    name: str
    target_repo: str | None = None  # v2alpha1 only
    target_tag: str | None = None  # v2alpha1 only
    platforms: list[str] = field(default_factory=list)
    line: int | None = None


@dataclass(slots=True)
class BlockedImage:
    pattern: Any  # a compiled RE2 pattern (blocked_patterns.compile_go_regexp): linear-time search
    line: int | None = None

    def matches(self, reference: str) -> bool:
        return self.pattern.search(reference) is not None


@dataclass(slots=True)
class StorageConfig:
    local_path: str | None = None
    registry_image: str | None = None
    registry_skip_tls: bool = False


@dataclass(slots=True)
class ImageSetConfig:
    """A validated ImageSetConfiguration."""

    path: str
    api_version: str
    operators: list[OperatorSpec] = field(default_factory=list)
    additional_images: list[AdditionalImage] = field(default_factory=list)
    blocked_images: list[BlockedImage] = field(default_factory=list)
    storage: StorageConfig | None = None
    archive_size_gb: int | None = None
    platform: dict[str, Any] | None = None  # accepted, not acted on yet (release payloads)
    helm: dict[str, Any] | None = None  # accepted, not acted on yet (chart images)
    warnings: list[str] = field(default_factory=list)

    @property
    def semantics(self) -> Semantics:
        return "v1" if self.api_version == API_V1 else "v2"

    def is_blocked(self, reference: str) -> bool:
        return any(b.matches(reference) for b in self.blocked_images)


# --------------------------------------------------------------------------------------------------
# Node-tree reading with locations


class _Reader:
    """Walks a YAML node tree, converting scalars and recording every problem with its location."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[ConfigError] = []
        self.warnings: list[str] = []

    def error(self, node: yaml.Node | None, fld: str, message: str, hint: str | None = None) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.errors.append(ConfigError(_cut(message), file=self.path, line=line, field=_cut(fld), hint=hint))

    def warn(self, node: yaml.Node | None, fld: str, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.warnings.append(f"{self.path}{line}: {_cut(fld)}: {_cut(message)}")

    def reference(self, node: yaml.Node, fld: str) -> str | None:
        """An image reference or tag: a YAML string; an unquoted number is refused, as oc-mirror
        refuses it (its YAML-to-JSON reader will not put a number in a string field)."""
        if isinstance(node, yaml.ScalarNode) and node.tag in (_INT_TAG, _FLOAT_TAG):
            self.error(node, fld, f"must be a string, found number {node.value!r}",
                       f'quote it if it is meant as a name: "{_cut(node.value)}"')
            return None
        return self.string(node, fld)

    def mapping(self, node: yaml.Node, fld: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, yaml.Node]:
        """The keys of a mapping node; unknown and duplicate keys are errors naming the nearest valid key."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, fld, f"must be a mapping, found {_kind(node)}")
            return {}
        out: dict[str, yaml.Node] = {}
        spelled: dict[str, str] = {}  # canonical field -> the spelling that set it
        for key_node, value_node in node.value:
            given = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            key = field_name(given, allowed)
            sub = f"{fld}.{key or given}" if fld else (key or given)
            if key is None:
                near = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
                hint = f"did you mean '{near[0]}'?" if near else f"valid fields here: {', '.join(allowed)}"
                self.error(key_node, sub, "unknown field", hint)
                continue
            if key in out and spelled[key] == given:
                self.error(key_node, sub, "field given twice")
                continue
            if key in out:
                # Go's decoder lets the later key win when two differ only in case; so do we, aloud.
                self.warn(key_node, sub, f"'{spelled[key]}' and '{given}' name the same field (names match "
                          f"ignoring case, as in oc-mirror); the later one, '{given}', is used")
            out[key] = value_node
            spelled[key] = given
        for key in required:
            if key not in out:
                self.error(node, f"{fld}.{key}" if fld else key, "required field is missing")
        return out

    def sequence(self, node: yaml.Node, fld: str) -> list[yaml.Node]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, fld, f"must be a list, found {_kind(node)}")
            return []
        return list(node.value)

    def string(self, node: yaml.Node, fld: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag in ("tag:yaml.org,2002:null",):
            self.error(node, fld, f"must be a string, found {_kind(node)}")
            return None
        if node.tag == "tag:yaml.org,2002:bool":
            self.error(node, fld, f"must be a string, found boolean {node.value!r}", "quote the value")
            return None
        return str(node.value)

    def version_string(self, node: yaml.Node, fld: str) -> str | None:
        """A version: numbers like `1.2` are read as their text, never as floats."""
        if isinstance(node, yaml.ScalarNode) and node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            return str(node.value)
        return self.string(node, fld)

    def boolean(self, node: yaml.Node, fld: str) -> bool:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
            return node.value.lower() in ("true", "yes", "on")
        self.error(node, fld, f"must be true or false, found {_kind(node)}")
        return False

    def integer(self, node: yaml.Node, fld: str) -> int | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
            return int(node.value, 0)
        self.error(node, fld, f"must be a whole number, found {_kind(node)}")
        return None

    def plain(self, node: yaml.Node) -> Any:
        """The node as plain Python data (for sections edgebuild keeps but does not interpret)."""
        return yaml.SafeLoader("").construct_document(node) if node is not None else None


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_SHOWN_WORD = 120  # longer runs without spaces in a message are cut to this many characters
_LONG_WORD_RE = re.compile(rf"\S{{{_SHOWN_WORD + 1},}}")


def _cut(text: str) -> str:
    """`text` with every overlong word cut, so a 100 KB value does not fill the terminal."""
    def shorten(match: re.Match[str]) -> str:
        word = match.group(0)
        return f"{word[:_SHOWN_WORD - 20]}…{word[-12:]} ({len(word)} characters)"
    return _LONG_WORD_RE.sub(shorten, text) if len(text) > _SHOWN_WORD else text


def field_name(given: str, allowed: tuple[str, ...]) -> str | None:
    """The field `given` names, matched as oc-mirror's decoder (Go encoding/json) matches: the exact
    name first, else the one equal ignoring case (`additionalimages` is `additionalImages`)."""
    if given in allowed:
        return given
    folded = given.casefold()
    return next((name for name in allowed if name.casefold() == folded), None)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    return f"{tag} {node.value!r}" if tag != "null" else "nothing (null)"


# --------------------------------------------------------------------------------------------------
# Schema per apiVersion


@dataclass(frozen=True)
class _Schema:
    top: tuple[str, ...]
    mirror: tuple[str, ...]
    platform: tuple[str, ...]
    operator: tuple[str, ...]
    package: tuple[str, ...]
    channel: tuple[str, ...]
    additional: tuple[str, ...]


_V1 = _Schema(
    top=("apiVersion", "kind", "mirror", "archiveSize", "storageConfig"),
    mirror=("platform", "operators", "additionalImages", "helm", "blockedImages", "samples"),
    platform=("graph", "architectures", "channels"),
    operator=("catalog", "packages", "full", "skipDependencies", "targetCatalog", "targetName", "targetTag",
              "originalRef"),
    package=("name", "channels", "minVersion", "maxVersion", "minBundle", "defaultChannel"),
    channel=("name", "minVersion", "maxVersion", "minBundle"),
    additional=("name",),
)
_V2 = _Schema(
    top=("apiVersion", "kind", "mirror", "archiveSize"),
    mirror=("platform", "operators", "additionalImages", "helm", "blockedImages", "samples"),
    platform=("graph", "architectures", "platforms", "channels", "release", "kubeVirtContainer"),
    operator=("catalog", "packages", "full", "skipDependencies", "targetCatalog", "targetTag",
              "targetCatalogSourceTemplate", "platforms"),
    package=("name", "channels", "minVersion", "maxVersion", "defaultChannel"),
    channel=("name", "minVersion", "maxVersion"),
    additional=("name", "targetRepo", "targetTag", "platforms"),
)


def load_config(path: str | Path) -> ImageSetConfig:
    """Read and validate an ImageSetConfiguration file; raise ConfigErrors listing every problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigErrors([ConfigError(f"cannot read the file: {exc.strerror}", file=str(path))]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigErrors([ConfigError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
                                        file=str(path), line=line, hint="save the file as UTF-8")]) from None
    return parse_config(text, str(path))


def parse_config(text: str, path: str = "<config>") -> ImageSetConfig:
    reader = _Reader(path)
    root = _compose_single(text, path)
    if root is None:
        raise ConfigErrors([ConfigError("the file is empty", file=path, line=1,
                                        hint="run 'edgebuild init' for a starting configuration")])
    config = _read_root(reader, root)
    if reader.errors:
        raise ConfigErrors(reader.errors)
    assert config is not None
    config.warnings = reader.warnings
    return config


def _compose_single(text: str, path: str) -> yaml.Node | None:
    """The one document of `text` as a node tree, built without recursion (yamlnodes.py), so any
    nesting depth is an ordinary configuration; YAML errors carry their line, never a position."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters already
        documents = compose_documents(loader)
        root = next(documents, None)
        extra = next(documents, None)
        if extra is not None:
            raise ConfigErrors([ConfigError("more than one YAML document in the file", file=path,
                                            line=extra.start_mark.line + 1,
                                            hint="keep one ImageSetConfiguration per file")])
        return root
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: located by position only
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigErrors([ConfigError(f"not valid YAML: control character U+{code:04X} is not allowed", file=path,
                                        line=line, hint="remove the control character")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigErrors([ConfigError(f"not valid YAML: {_cut(problem)}", file=path,
                                        line=mark.line + 1 if mark else 1)]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _read_root(r: _Reader, root: yaml.Node) -> ImageSetConfig | None:
    if not isinstance(root, yaml.MappingNode):
        r.error(root, "", f"the document must be a mapping, found {_kind(root)}")
        return None
    keys = {field_name(k.value, ("apiVersion",)): v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    api_node = keys.get("apiVersion")
    api = api_node.value if isinstance(api_node, yaml.ScalarNode) else None
    if api not in (API_V1, API_V2):
        r.error(api_node if api_node is not None else root, "apiVersion",
                f"unsupported apiVersion {api!r}" if api else "required field is missing",
                f"use '{API_V1}' (oc-mirror v1 semantics) or '{API_V2}' (oc-mirror v2 semantics)")
        return None
    schema = _V1 if api == API_V1 else _V2
    top = r.mapping(root, "", schema.top, required=("kind", "mirror"))
    kind_node = top.get("kind")
    if kind_node is not None and r.string(kind_node, "kind") not in (None, KIND):
        r.error(kind_node, "kind", f"unsupported kind {kind_node.value!r}", f"use 'kind: {KIND}'")
    config = ImageSetConfig(path=r.path, api_version=api)
    if "archiveSize" in top:
        size = r.integer(top["archiveSize"], "archiveSize")
        if size is not None and size <= 0:
            r.error(top["archiveSize"], "archiveSize", "must be a positive number of GB")
        config.archive_size_gb = size
    if "storageConfig" in top:
        config.storage = _read_storage(r, top["storageConfig"])
    if "mirror" in top:
        _read_mirror(r, top["mirror"], schema, config)
    return config


def _read_storage(r: _Reader, node: yaml.Node) -> StorageConfig | None:
    keys = r.mapping(node, "storageConfig", ("local", "registry"))
    storage = StorageConfig()
    if "local" in keys:
        local = r.mapping(keys["local"], "storageConfig.local", ("path",), required=("path",))
        if "path" in local:
            storage.local_path = r.string(local["path"], "storageConfig.local.path")
            if storage.local_path:
                _check_path_lengths(r, local["path"], "storageConfig.local.path", storage.local_path)
    if "registry" in keys:
        reg = r.mapping(keys["registry"], "storageConfig.registry", ("imageURL", "skipTLS"), required=("imageURL",))
        if "imageURL" in reg:
            storage.registry_image = r.reference(reg["imageURL"], "storageConfig.registry.imageURL")
            if storage.registry_image:
                _check_reference(r, reg["imageURL"], "storageConfig.registry.imageURL", storage.registry_image)
        if "skipTLS" in reg:
            storage.registry_skip_tls = r.boolean(reg["skipTLS"], "storageConfig.registry.skipTLS")
    if storage.local_path and storage.registry_image:
        r.error(node, "storageConfig", "set either 'local' or 'registry', not both")
    return storage


def _read_mirror(r: _Reader, node: yaml.Node, schema: _Schema, config: ImageSetConfig) -> None:
    keys = r.mapping(node, "mirror", schema.mirror)
    if not keys and isinstance(node, yaml.MappingNode):
        r.error(node, "mirror", "nothing to mirror",
                "add 'operators', 'additionalImages' (run 'edgebuild init' for an example)")
    if "platform" in keys:
        config.platform = _read_platform(r, keys["platform"], schema)
        r.warn(keys["platform"], "mirror.platform",
               "accepted but not acted on: OpenShift release payloads are not mirrored by edgebuild; "
               "MicroShift's own images come from its release-info files (render --release-info)")
    if "helm" in keys:
        config.helm = _read_helm(r, keys["helm"])
        r.warn(keys["helm"], "mirror.helm", "accepted but not acted on yet: chart images are not mirrored")
    if "samples" in keys:
        r.sequence(keys["samples"], "mirror.samples")
        r.warn(keys["samples"], "mirror.samples", "has no effect: oc-mirror does not implement samples either")
    for i, op_node in enumerate(r.sequence(keys["operators"], "mirror.operators") if "operators" in keys else []):
        op = _read_operator(r, op_node, f"mirror.operators[{i}]", schema, config.api_version)
        if op is not None:
            config.operators.append(op)
    for i, img_node in enumerate(r.sequence(keys["additionalImages"], "mirror.additionalImages")
                                 if "additionalImages" in keys else []):
        fld = f"mirror.additionalImages[{i}]"
        img_keys = r.mapping(img_node, fld, schema.additional, required=("name",))
        if "name" not in img_keys:
            continue
        name = r.reference(img_keys["name"], f"{fld}.name")
        if name is None:
            continue
        _check_reference(r, img_keys["name"], f"{fld}.name", name)
        img = AdditionalImage(name=name, line=img_node.start_mark.line + 1)
        if "targetRepo" in img_keys:
            img.target_repo = r.reference(img_keys["targetRepo"], f"{fld}.targetRepo")
            _check_target_repo(r, img_keys.get("targetRepo"), f"{fld}.targetRepo", img.target_repo)
        if "targetTag" in img_keys:
            img.target_tag = r.reference(img_keys["targetTag"], f"{fld}.targetTag")
            _check_tag(r, img_keys.get("targetTag"), f"{fld}.targetTag", img.target_tag)
        if "platforms" in img_keys:
            img.platforms = _read_platforms(r, img_keys["platforms"], f"{fld}.platforms")
        config.additional_images.append(img)
    for i, b_node in enumerate(r.sequence(keys["blockedImages"], "mirror.blockedImages")
                               if "blockedImages" in keys else []):
        fld = f"mirror.blockedImages[{i}]"
        b_keys = r.mapping(b_node, fld, ("name",), required=("name",))
        if "name" not in b_keys:
            continue
        pattern = r.string(b_keys["name"], f"{fld}.name")
        if pattern is None:
            continue
        try:
            config.blocked_images.append(BlockedImage(compile_go_regexp(pattern), b_node.start_mark.line + 1))
        except GoRegexpError as exc:
            r.error(b_keys["name"], f"{fld}.name", f"not a valid regular expression: {exc}",
                    "blockedImages names are Go (RE2) regular expressions matched against image references, as "
                    "oc-mirror reads them: no look-around or back-references; escape special characters such as "
                    "'.', '(' and '[' with a backslash")
    _check_duplicates(r, config, node)


def _read_platform(r: _Reader, node: yaml.Node, schema: _Schema) -> dict[str, Any]:
    keys = r.mapping(node, "mirror.platform", schema.platform)
    out: dict[str, Any] = {}
    if "graph" in keys:
        out["graph"] = r.boolean(keys["graph"], "mirror.platform.graph")
    if "architectures" in keys:
        archs = []
        for j, a in enumerate(r.sequence(keys["architectures"], "mirror.platform.architectures")):
            value = r.string(a, f"mirror.platform.architectures[{j}]")
            if value is not None and value not in ARCHITECTURES:
                r.error(a, f"mirror.platform.architectures[{j}]", f"unknown architecture {value!r}",
                        f"use one of {', '.join(ARCHITECTURES)}")
            archs.append(value)
        out["architectures"] = archs
    if "platforms" in keys:
        out["platforms"] = _read_platforms(r, keys["platforms"], "mirror.platform.platforms")
        if "architectures" in keys:
            r.error(keys["platforms"], "mirror.platform.platforms",
                    "'platforms' and the deprecated 'architectures' cannot be used together", "keep 'platforms'")
    for flag in ("release",):
        if flag in keys:
            out[flag] = r.string(keys[flag], f"mirror.platform.{flag}")
    if "kubeVirtContainer" in keys:
        out["kubeVirtContainer"] = r.boolean(keys["kubeVirtContainer"], "mirror.platform.kubeVirtContainer")
    channels = []
    seen: dict[str, int] = {}
    for j, c in enumerate(r.sequence(keys["channels"], "mirror.platform.channels") if "channels" in keys else []):
        fld = f"mirror.platform.channels[{j}]"
        ck = r.mapping(c, fld, ("name", "type", "minVersion", "maxVersion", "shortestPath", "full"),
                       required=("name",))
        entry: dict[str, Any] = {}
        if "name" in ck:
            entry["name"] = r.string(ck["name"], f"{fld}.name")
            if entry["name"] in seen:
                r.error(ck["name"], f"{fld}.name",
                        f"release channel {entry['name']!r}: duplicate found in configuration")
            seen[entry["name"]] = j
        for vkey in ("minVersion", "maxVersion"):
            if vkey in ck:
                entry[vkey] = r.version_string(ck[vkey], f"{fld}.{vkey}")
        if "type" in ck:
            entry["type"] = r.string(ck["type"], f"{fld}.type")
        for bkey in ("shortestPath", "full"):
            if bkey in ck:
                entry[bkey] = r.boolean(ck[bkey], f"{fld}.{bkey}")
        channels.append(entry)
    if channels:
        out["channels"] = channels
    return out


def _read_platforms(r: _Reader, node: yaml.Node, fld: str) -> list[str]:
    """v2alpha1 `platforms: [{os, architecture}]` -> ["linux/amd64", …]."""
    out = []
    for j, p in enumerate(r.sequence(node, fld)):
        pk = r.mapping(p, f"{fld}[{j}]", ("os", "architecture"), required=("architecture",))
        arch = r.string(pk["architecture"], f"{fld}[{j}].architecture") if "architecture" in pk else None
        os_ = r.string(pk["os"], f"{fld}[{j}].os") if "os" in pk else "linux"
        if arch:
            out.append(f"{os_}/{arch}")
    return out


def _read_helm(r: _Reader, node: yaml.Node) -> dict[str, Any]:
    keys = r.mapping(node, "mirror.helm", ("repositories", "local"))
    chart_keys = ("name", "version", "path", "imagePaths", "platforms")
    for j, repo in enumerate(r.sequence(keys["repositories"], "mirror.helm.repositories")
                             if "repositories" in keys else []):
        fld = f"mirror.helm.repositories[{j}]"
        rk = r.mapping(repo, fld, ("name", "url", "charts"), required=("name", "url"))
        for k, chart in enumerate(r.sequence(rk["charts"], f"{fld}.charts") if "charts" in rk else []):
            r.mapping(chart, f"{fld}.charts[{k}]", chart_keys, required=("name",))
    for j, chart in enumerate(r.sequence(keys["local"], "mirror.helm.local") if "local" in keys else []):
        r.mapping(chart, f"mirror.helm.local[{j}]", chart_keys, required=("name", "path"))
    return r.plain(node) or {}


def _read_operator(r: _Reader, node: yaml.Node, fld: str, schema: _Schema, api: str) -> OperatorSpec | None:
    keys = r.mapping(node, fld, schema.operator, required=("catalog",))
    if "catalog" not in keys:
        return None
    catalog = r.reference(keys["catalog"], f"{fld}.catalog")
    if catalog is None:
        return None
    op = OperatorSpec(catalog=catalog, line=node.start_mark.line + 1)
    if catalog.startswith("oci://"):
        if not catalog.removeprefix("oci://"):
            r.error(keys["catalog"], f"{fld}.catalog", "an oci:// catalog needs a path", "e.g. oci:///srv/catalogs/my-index")
        else:
            _check_path_lengths(r, keys["catalog"], f"{fld}.catalog", catalog.removeprefix("oci://"))
    else:
        _check_reference(r, keys["catalog"], f"{fld}.catalog", catalog)
    for flag, attr in (("full", "full"), ("skipDependencies", "skip_dependencies")):
        if flag in keys:
            setattr(op, attr, r.boolean(keys[flag], f"{fld}.{flag}"))
    for key, attr in (("targetCatalog", "target_catalog"), ("targetName", "target_name"), ("targetTag", "target_tag"),
                      ("targetCatalogSourceTemplate", "target_catalog_source_template")):
        if key in keys:
            read = r.reference if key in ("targetCatalog", "targetName", "targetTag") else r.string
            setattr(op, attr, read(keys[key], f"{fld}.{key}"))
    if op.target_catalog and not _TARGET_CATALOG_RE.match(op.target_catalog):
        r.error(keys["targetCatalog"], f"{fld}.targetCatalog", f"invalid target path {op.target_catalog!r}",
                "use lowercase path components such as 'my-namespace/my-catalog'")
    _check_tag(r, keys.get("targetTag"), f"{fld}.targetTag", op.target_tag)
    if "targetName" in keys:
        r.warn(keys["targetName"], f"{fld}.targetName", "deprecated since OpenShift 4.13; use targetCatalog")
    if "originalRef" in keys:
        r.string(keys["originalRef"], f"{fld}.originalRef")
        r.warn(keys["originalRef"], f"{fld}.originalRef", "has no effect: oc-mirror does not use it either")
    if "platforms" in keys:
        op.platforms = _read_platforms(r, keys["platforms"], f"{fld}.platforms")
    if api == API_V2 and op.skip_dependencies:
        r.warn(keys["skipDependencies"], f"{fld}.skipDependencies",
               "has no effect with v2alpha1: oc-mirror v2 never adds dependencies")
    seen_pkgs: dict[str, int] = {}
    for j, p_node in enumerate(r.sequence(keys["packages"], f"{fld}.packages") if "packages" in keys else []):
        pfld = f"{fld}.packages[{j}]"
        pkg = _read_package(r, p_node, pfld, schema, api, op)
        if pkg is None:
            continue
        if pkg.name in seen_pkgs:
            r.error(p_node, f"{pfld}.name", f"catalog {catalog!r}: duplicate package entry {pkg.name!r}",
                    f"merge it with mirror.operators[…].packages[{seen_pkgs[pkg.name]}]")
        seen_pkgs[pkg.name] = j
        op.packages.append(pkg)
    return op


def _read_package(r: _Reader, node: yaml.Node, fld: str, schema: _Schema, api: str,
                  op: OperatorSpec) -> PackageSpec | None:
    keys = r.mapping(node, fld, schema.package, required=("name",))
    if "name" not in keys:
        return None
    name = r.string(keys["name"], f"{fld}.name")
    if not name:
        if name == "":
            r.error(keys["name"], f"{fld}.name", "must not be empty")
        return None
    pkg = PackageSpec(name=name, line=node.start_mark.line + 1)
    if "defaultChannel" in keys:
        pkg.default_channel = r.string(keys["defaultChannel"], f"{fld}.defaultChannel")
    _read_versions(r, keys, fld, pkg, api, op, f"package {name!r}")
    seen: dict[str, int] = {}
    for k, c_node in enumerate(r.sequence(keys["channels"], f"{fld}.channels") if "channels" in keys else []):
        cfld = f"{fld}.channels[{k}]"
        ck = r.mapping(c_node, cfld, schema.channel, required=("name",))
        if "name" not in ck:
            continue
        cname = r.string(ck["name"], f"{cfld}.name")
        if not cname:
            continue
        ch = ChannelSpec(name=cname, line=c_node.start_mark.line + 1)
        _read_versions(r, ck, cfld, ch, api, op, f"channel {cname!r} of package {name!r}")
        if cname in seen:
            r.error(c_node, f"{cfld}.name",
                    f"catalog {op.catalog!r}: operator {name!r}: duplicate channel entry {cname!r}")
        seen[cname] = k
        pkg.channels.append(ch)
    if api == API_V2 and (pkg.min_version or pkg.max_version) and any(c.min_version or c.max_version
                                                                       for c in pkg.channels):
        r.error(node, fld, f"catalog {op.catalog!r}: operator {name!r}: mixing both filtering by "
                "minVersion/maxVersion and filtering by channel minVersion/maxVersion is not allowed",
                "set versions either on the package or on its channels")
    if api == API_V1 and (pkg.min_version or pkg.max_version or pkg.min_bundle) and pkg.channels:
        r.warn(node, fld, "oc-mirror v1 does not apply a package-level version filter to the listed channels "
               "(they keep their heads, or every channel is re-added for minVersion); "
               "put minVersion/maxVersion on each channel to filter them")
    return pkg


def _read_versions(r: _Reader, keys: dict[str, yaml.Node], fld: str, target: PackageSpec | ChannelSpec,
                   api: str, op: OperatorSpec, what: str) -> None:
    """minVersion / maxVersion / minBundle of a package or channel, with semver and order checks."""
    parse: Callable[[str], Version] = Version.parse if api == API_V1 else Version.parse_lenient
    parsed: dict[str, Version] = {}
    numbers = {k for k in ("minVersion", "maxVersion") if k in keys and _is_number(keys[k])} if api == API_V1 else set()
    ignored = _v1_ignored_range(r, keys, fld, what) if api == API_V1 and not numbers else set()
    for key, attr in (("minVersion", "min_version"), ("maxVersion", "max_version")):
        if key not in keys or key in ignored:
            continue
        if key in numbers:
            # oc-mirror v1 decodes YAML through JSON: an unquoted 1.2 is a number and the file is refused.
            r.error(keys[key], f"{fld}.{key}", f"{what}: {key} {keys[key].value} is a number, not a string; oc-mirror "
                    f"v1 refuses the file (json: cannot unmarshal number into Go struct field … of type string)",
                    f"quote it and give X.Y.Z: {key}: \"{Version.parse_lenient(keys[key].value)}\""
                    if Version.try_parse(keys[key].value, lenient=True) else "quote it")
            continue
        text = r.version_string(keys[key], f"{fld}.{key}")
        if text is None:
            continue
        if api == API_V1 and key == "maxVersion" and Version.try_parse(text) is None and _is_v1_range(f"<={text}"):
            setattr(target, attr, text)  # a blang wildcard such as 1.2.x: a valid bound in oc-mirror v1
            continue
        try:
            parsed[key] = parse(text)
        except VersionError as exc:
            hint = ("oc-mirror v1 (v1alpha2) needs exactly X.Y.Z, e.g. 1.2.0"
                    if api == API_V1 else "e.g. 1.2.3, 1.2 or 1.2.3-rc.1")
            r.error(keys[key], f"{fld}.{key}", f"{exc}; {what}: {key} must respect semantic versioning notation",
                    hint)
        setattr(target, attr, text)
    if "minVersion" in parsed and "maxVersion" in parsed and parsed["minVersion"] > parsed["maxVersion"]:
        r.error(keys["minVersion"], f"{fld}.minVersion",
                f"{what}: minVersion {target.min_version} is greater than maxVersion {target.max_version}; "
                "no bundle can match", "swap the two values or correct one of them")
    if "minBundle" in keys:
        target.min_bundle = r.string(keys["minBundle"], f"{fld}.minBundle")
        if target.min_version:
            r.error(keys["minBundle"], f"{fld}.minBundle", "minimum version and bundle are mutually exclusive",
                    "keep either minVersion or minBundle")
    if api == API_V2 and op.full and (target.min_version or target.max_version):
        r.error(keys.get("minVersion") or keys.get("maxVersion"), f"{fld}",
                f"{what}: Full: true cannot be mixed with versionRange",
                "remove 'full: true' from the catalog, or remove minVersion/maxVersion")


def _is_number(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _is_v1_range(text: str) -> bool:
    from .catalog.ranges_v1 import RangeError, parse_range
    try:
        parse_range(text)
        return True
    except RangeError:
        return False


def _v1_ignored_range(r: _Reader, keys: dict[str, yaml.Node], fld: str, what: str) -> set[str]:
    """The version fields oc-mirror v1 silently drops, each with a warning saying so.

    oc-mirror v1 (pkg/api/v1alpha2 ConvertToDiffIncludeConfig) writes maxVersion, or min and max
    together, as the range `<=MAX` / `>=MIN <=MAX`, and its diff (convertIncludeConfigToIncluder)
    parses that with `range, _ = semver.ParseRange(...)`: a version that is not X.Y.Z (`1.2`) makes
    the whole range fail and be dropped, so the package is selected as if neither bound were given.
    A lone minVersion is parsed strictly and fails, which stays an error. Text that is no version at
    all (`latest`) stays an error too: ignoring it would only hide a typo.
    """
    texts = {k: r.version_string(keys[k], f"{fld}.{k}") for k in ("minVersion", "maxVersion") if k in keys}
    if "maxVersion" not in texts or any(t is None for t in texts.values()):
        return set()
    bounds = [f">={texts['minVersion']}"] if "minVersion" in texts else []
    if _is_v1_range(" ".join(bounds + [f"<={texts['maxVersion']}"])):
        return set()
    suggestions = {}
    for key, text in texts.items():
        if Version.try_parse(text) is None:
            lenient = Version.try_parse(text, lenient=True)
            if lenient is None:
                return set()  # not a version at all: reported as an error by the caller
            suggestions[key] = str(lenient)
    dropped = " and ".join(f"{k} {texts[k]!r}" for k in texts)
    fixes = ", ".join(f"{k}: \"{v}\"" for k, v in suggestions.items())
    node = keys["maxVersion"] if "maxVersion" in suggestions else keys["minVersion"]
    r.warn(node, fld, f"{what}: {dropped} ignored: oc-mirror v1 (v1alpha2) needs full X.Y.Z versions and, "
           f"given {', '.join(repr(texts[k]) for k in suggestions)}, selects as if no "
           f"{'minVersion/maxVersion' if len(texts) == 2 else 'maxVersion'} were given (edgebuild selects the "
           f"same); write {fixes} to apply the bound")
    return set(texts)


def _check_reference(r: _Reader, node: yaml.Node, fld: str, text: str) -> None:
    try:
        ref = ImageReference.parse(text)
    except ReferenceError as exc:
        r.error(node, fld, str(exc), "write it as registry/path/name:tag or registry/path/name@sha256:<digest>")
        return
    if len(ref.name) > _NAME_MAX:  # distribution/reference's NameTotalLengthMax
        r.error(node, fld, f"image name {ref.name!r} is {len(ref.name)} characters; at most {_NAME_MAX} are allowed",
                "registries refuse longer repository names")


_NAME_MAX = 255
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _check_tag(r: _Reader, node: yaml.Node | None, fld: str, tag: str | None) -> None:
    if tag is not None and not _TAG_RE.match(tag):
        r.error(node, fld, f"invalid tag {tag!r}", "a tag is letters, digits, '_', '.' and '-' (not first), "
                "at most 128 characters")


def _check_target_repo(r: _Reader, node: yaml.Node | None, fld: str, repo: str | None) -> None:
    if repo is not None and not _TARGET_CATALOG_RE.match(repo):
        r.error(node, fld, f"invalid repository path {repo!r}",
                "use lowercase path components such as 'my-namespace/my-image'")


def _check_path_lengths(r: _Reader, node: yaml.Node, fld: str, path: str) -> None:
    """A filesystem path the run will create or read: refused here rather than by the kernel later."""
    problem = path_length_problem(path)
    if problem:
        r.error(node, fld, problem, "use a shorter path")


def catalog_unique_name(op: OperatorSpec) -> str:
    """oc-mirror's unique name of a catalog entry: the reference with targetCatalog/Name/Tag applied."""
    if op.is_oci:
        base = op.catalog
        return f"{base}:{op.target_tag}" if op.target_tag else base
    ref = ImageReference.parse(op.catalog)
    repo = ref.repository
    if op.target_catalog:
        repo = op.target_catalog
    elif op.target_name:
        repo = repo.rpartition("/")[0] + "/" + op.target_name if "/" in repo else op.target_name
    out = f"{ref.registry}/{repo}"
    if op.target_tag:
        return f"{out}:{op.target_tag}"
    if ref.tag:
        out += f":{ref.tag}"
    if ref.digest:
        out += f"@{ref.digest}"
    return out


def _check_duplicates(r: _Reader, config: ImageSetConfig, node: yaml.Node) -> None:
    seen: dict[str, OperatorSpec] = {}
    for i, op in enumerate(config.operators):
        try:
            name = catalog_unique_name(op)
        except ReferenceError:
            continue
        if name in seen:
            r.errors.append(ConfigError(
                _cut(f"catalog {name!r}: duplicate found in configuration"), file=r.path, line=op.line,
                field=f"mirror.operators[{i}].catalog",
                hint="merge the packages into one entry, or give one of them a different targetCatalog/targetTag"))
        seen[name] = op
