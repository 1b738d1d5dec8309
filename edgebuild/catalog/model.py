"""The in-memory model of a file-based catalog (FBC).

Only what selection, planning and rendering need is kept: channel entries with their upgrade edges,
and per bundle its image, version, dependencies, related images and install modes. Large payloads
(icons, `olm.bundle.object` CSV blobs) are reduced to the few facts read from them, so a catalog of
hundreds of MB does not stay in memory. Blobs of unknown schemas and `olm.deprecations` are kept as
the dicts they were, since they are small and must survive a catalog rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_PACKAGE = "olm.package"
SCHEMA_CHANNEL = "olm.channel"
SCHEMA_BUNDLE = "olm.bundle"
SCHEMA_DEPRECATIONS = "olm.deprecations"
# The image label naming the directory of a file-based catalog inside a catalog image.
CATALOG_LABEL = "operators.operatorframework.io.index.configs.v1"


@dataclass(slots=True)
class ChannelEntry:
    """One `entries[]` item of an olm.channel blob: a bundle name and its upgrade edges."""

    name: str
    replaces: str | None = None
    skips: tuple[str, ...] = ()
    skip_range: str | None = None

    def to_fbc(self) -> dict[str, Any]:
        """The entry as it is written in an FBC channel blob."""
        out: dict[str, Any] = {"name": self.name}
        if self.replaces:
            out["replaces"] = self.replaces
        if self.skips:
            out["skips"] = list(self.skips)
        if self.skip_range:
            out["skipRange"] = self.skip_range
        return out


@dataclass(slots=True)
class Channel:
    """An olm.channel blob."""

    name: str
    package: str
    entries: list[ChannelEntry] = field(default_factory=list)
    priority: int | None = None  # from an `olm.channel` property, used by oc-mirror v1's default fallback
    properties: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PackageRequirement:
    """`olm.package.required`: a package name and a semver range (empty = any version)."""

    package: str
    version_range: str = ""


@dataclass(frozen=True, slots=True)
class GVK:
    """A group/version/kind, from `olm.gvk` (provided) or `olm.gvk.required`."""

    group: str
    version: str
    kind: str


@dataclass(frozen=True, slots=True)
class RelatedImage:
    name: str
    image: str


@dataclass(slots=True)
class Bundle:
    """An olm.bundle blob, reduced to what edgebuild uses."""

    name: str
    package: str
    image: str
    version: str  # from the `olm.package` property; "" if absent
    related_images: list[RelatedImage] = field(default_factory=list)
    required_packages: list[PackageRequirement] = field(default_factory=list)
    required_gvks: list[GVK] = field(default_factory=list)
    provided_gvks: list[GVK] = field(default_factory=list)
    # installModes of the CSV (type -> supported), from olm.csv.metadata or the CSV in olm.bundle.object.
    install_modes: dict[str, bool] | None = None


@dataclass(slots=True)
class Package:
    """An olm.package blob with its channels and bundles."""

    name: str
    default_channel: str | None
    description: str = ""
    channels: dict[str, Channel] = field(default_factory=dict)
    bundles: dict[str, Bundle] = field(default_factory=dict)


@dataclass(slots=True)
class Catalog:
    """A whole catalog: packages by name, plus blobs edgebuild does not interpret."""

    packages: dict[str, Package] = field(default_factory=dict)
    deprecations: list[dict[str, Any]] = field(default_factory=list)
    others: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""  # where it was loaded from, for messages

    def bundle(self, package: str, name: str) -> Bundle | None:
        pkg = self.packages.get(package)
        return pkg.bundles.get(name) if pkg else None

    @property
    def bundle_count(self) -> int:
        return sum(len(p.bundles) for p in self.packages.values())
