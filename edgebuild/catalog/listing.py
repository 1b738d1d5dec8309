"""What `edgebuild list operators` and `edgebuild list catalogs` show: data, text and JSON.

Three levels, as `oc mirror list operators` has them: the packages of a catalog with their default
channel; the channels of a package with each channel's head; the bundles of a channel in upgrade
order. A name that is not in the catalog is an error that lists the nearest names, so a typo is
fixed without a second lookup.
"""

from __future__ import annotations

import difflib
import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CatalogError, UsageError
from ..semver import Version
from .graph import channel_heads
from .model import Catalog, Channel, Package

REDHAT_INDEXES = ("redhat-operator-index", "certified-operator-index", "community-operator-index",
                  "redhat-marketplace-index")
_OCP_VERSION_RE = re.compile(r"^v?(4)\.(0|[1-9]\d*)$")


@dataclass(frozen=True, slots=True)
class PackageRow:
    name: str
    default_channel: str


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """A channel and its head: the entry no other entry replaces or skips (several if the graph is broken)."""

    package: str
    name: str
    heads: tuple[str, ...]
    head_version: str

    @property
    def head(self) -> str:
        return ", ".join(self.heads)


@dataclass(frozen=True, slots=True)
class VersionRow:
    bundle: str
    version: str


class UnknownNameError(CatalogError):
    """A package or channel that the catalog does not have; `nearest` holds the closest names."""

    def __init__(self, message: str, nearest: list[str], hint: str) -> None:
        super().__init__(message, hint)
        self.nearest = nearest


# --------------------------------------------------------------------------------------------------
# Data


def list_packages(catalog: Catalog) -> list[PackageRow]:
    """Every package, sorted by name, with its default channel ("" when the catalog has none)."""
    return [PackageRow(p.name, p.default_channel or "") for _, p in sorted(catalog.packages.items())]


def list_channels(catalog: Catalog, package: str) -> list[ChannelRow]:
    """The channels of `package`, sorted by name, each with its head bundle and that bundle's version."""
    pkg = find_package(catalog, package)
    rows = []
    for name, channel in sorted(pkg.channels.items()):
        heads = tuple(channel_heads(channel.entries))
        bundle = pkg.bundles.get(heads[0]) if len(heads) == 1 else None
        rows.append(ChannelRow(pkg.name, name, heads, bundle.version if bundle else ""))
    return rows


def list_versions(catalog: Catalog, package: str, channel: str) -> list[VersionRow]:
    """The bundles of a channel in upgrade order: every bundle after those it replaces or skips."""
    pkg = find_package(catalog, package)
    chan = find_channel(pkg, channel)
    return [VersionRow(name, pkg.bundles[name].version if name in pkg.bundles else "")
            for name in upgrade_order(chan, pkg)]


def upgrade_order(channel: Channel, package: Package) -> list[str]:
    """Entry names ordered so that each comes after every entry it replaces or skips (oldest first).

    Among entries free to go next, the lower version goes first (then the name), which makes the
    order stable. Entries caught in a cycle, which a valid channel never has, come last by version.
    """
    names = {e.name for e in channel.entries}
    successors: dict[str, list[str]] = {n: [] for n in names}
    waiting: dict[str, int] = dict.fromkeys(names, 0)
    for entry in channel.entries:
        older_names = {*entry.skips, *([entry.replaces] if entry.replaces else [])}
        for older in older_names & names - {entry.name}:
            successors[older].append(entry.name)
            waiting[entry.name] += 1

    def key(name: str) -> tuple[Any, ...]:
        bundle = package.bundles.get(name)
        version = Version.try_parse(bundle.version if bundle else None, lenient=True)
        return (0, version, name) if version is not None else (1, name)

    ready = [(key(n), n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for nxt in successors[name]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (key(nxt), nxt))
    placed = set(order)
    order.extend(sorted((n for n in names if n not in placed), key=key))
    return order


def find_package(catalog: Catalog, name: str) -> Package:
    pkg = catalog.packages.get(name)
    if pkg is None:
        raise _unknown("package", name, list(catalog.packages), f"catalog {catalog.source or '(unnamed)'}",
                       "run without --package to list all packages")
    return pkg


def find_channel(package: Package, name: str) -> Channel:
    chan = package.channels.get(name)
    if chan is None:
        raise _unknown("channel", name, list(package.channels), f"package {package.name}",
                       "run without --channel to list the channels of the package")
    return chan


def _unknown(kind: str, name: str, names: Sequence[str], where: str, fallback: str) -> UnknownNameError:
    nearest = nearest_names(name, names)
    hint = f"did you mean: {', '.join(nearest)}?" if nearest else fallback
    return UnknownNameError(f"{where} has no {kind} {name!r}", nearest, hint)


def nearest_names(name: str, names: Sequence[str], limit: int = 5) -> list[str]:
    """Names close to `name`: by edit similarity, then those containing it (case-insensitive)."""
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[n] for n in difflib.get_close_matches(name.lower(), list(by_lower), n=limit, cutoff=0.6)]
    containing = sorted(n for n in names if name.lower() in n.lower() and n not in close)
    return (close + containing)[:limit]


def redhat_catalogs(version: str, registry: str = "registry.redhat.io") -> list[str]:
    """The four Red Hat operator index images of an OpenShift version ('4.15' or 'v4.15'), on `registry`
    (a mirror keeps their paths: oc-mirror puts them under <mirror>/redhat/…)."""
    m = _OCP_VERSION_RE.match(version.strip())
    if not m:
        raise UsageError(f"OpenShift version {version!r} is not of the form 4.N", "e.g. --version 4.15")
    tag = f"v{m.group(1)}.{m.group(2)}"
    return [f"{registry}/redhat/{index}:{tag}" for index in REDHAT_INDEXES]


# --------------------------------------------------------------------------------------------------
# Output


def to_json(catalog: Catalog, package: str | None = None, channel: str | None = None) -> dict[str, Any]:
    """The `--format json` object for the level the arguments select."""
    source = catalog.source
    if package is None:
        return {"catalog": source,
                "packages": [{"name": r.name, "defaultChannel": r.default_channel} for r in list_packages(catalog)]}
    pkg = find_package(catalog, package)
    if channel is None:
        return {"catalog": source, "package": pkg.name, "defaultChannel": pkg.default_channel or "",
                "channels": [{"name": r.name, "head": r.heads[0] if len(r.heads) == 1 else None,
                              "heads": list(r.heads), "headVersion": r.head_version}
                             for r in list_channels(catalog, package)]}
    return {"catalog": source, "package": pkg.name, "channel": channel,
            "bundles": [{"name": r.bundle, "version": r.version} for r in list_versions(catalog, package, channel)]}


def format_text(catalog: Catalog, package: str | None = None, channel: str | None = None) -> str:
    """Aligned columns for people, in the spirit of `oc mirror list operators`."""
    if package is None:
        return table(("NAME", "DEFAULT CHANNEL"), [(r.name, r.default_channel) for r in list_packages(catalog)])
    pkg = find_package(catalog, package)
    if channel is None:
        head = table(("NAME", "DEFAULT CHANNEL"), [(pkg.name, pkg.default_channel or "")])
        rows = [(r.package, r.name, r.head or "(none)", r.head_version) for r in list_channels(catalog, package)]
        return head + "\n" + table(("PACKAGE", "CHANNEL", "HEAD", "VERSION"), rows)
    return table(("BUNDLE", "VERSION"), [(r.bundle, r.version) for r in list_versions(catalog, package, channel)])


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; no trailing blanks."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
