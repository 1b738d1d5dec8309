"""Bundle selection with oc-mirror v2 semantics (ImageSetConfiguration v2alpha1).

oc-mirror v2 delegates operator filtering to catalog-filter (`mirror-config/v1alpha1`, v0.0.5).
This module selects exactly what it selects, rule by rule (openshift/oc-mirror
internal/pkg/operator/catalog_handler.go filterCatalog, which calls github.com/sherine-k/catalog-filter
pkg/filter/mirror-config/v1alpha1 mirror-filter.go FilterCatalog), and raises its errors with its wording
so that users can search for them:

* `full: true` without packages: the catalog is mirrored as it is, nothing filtered.
* Listed packages (and, when given, listed channels) are kept; unknown names are ignored by
  oc-mirror. edgebuild keeps that outcome and adds a warning naming the nearest existing names.
* Default channel: an override must name a kept channel; without one the catalog's default must
  have survived the channel list. No fallback.
* Per channel: `full` keeps every entry; a version range keeps the smallest single-head piece of
  the replaces chain that holds every in-range bundle (`filter_channel_by_range`); min == max keeps
  exactly that version; nothing keeps the channel head. A channel that ends up empty is an error on
  the catalog's default channel and silently dropped elsewhere.
* Entries are copied verbatim; no dependency resolution (v2 has none: a warning names the missing
  required packages instead).
"""

from __future__ import annotations

import copy
import difflib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import OperatorSpec, PackageSpec
from ..errors import SelectionError
from ..semver import Version
from .graph import ChannelGraphError
from .model import Catalog, Channel, ChannelEntry, Package
from .ranges_v2 import RangeError, VersionRange, go_quote, pinned_version, range_from_min_max
from .selection import SelectedPackage, Selection

# --------------------------------------------------------------------------------------------------
# Channel graph (catalog-filter newChannel / filterByVersionRange)


@dataclass(slots=True)
class ChannelGraph:
    """A validated channel: its single head and the upgrade edges of every entry."""

    head: str
    replaces: dict[str, str] = field(default_factory=dict)
    skips: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def replaces_chain(self) -> list[str]:
        """Head first, following `replaces` (possibly to a name that is not a channel entry)."""
        chain, seen = [], set()
        name: str | None = self.head
        while name is not None and name not in seen:
            chain.append(name)
            seen.add(name)
            name = self.replaces.get(name)
        return chain


def channel_graph(entries: list[ChannelEntry]) -> ChannelGraph:
    """Check a channel the way catalog-filter's newChannel does and return its graph.

    The head is the entry no other entry replaces or skips; there must be exactly one, every edge
    must be reachable from it (else a cycle), and no entry may repeat or point at itself. All
    problems found before the cycle check are reported together, one per line, as Go's errors.Join.
    """
    if not entries:
        raise ChannelGraphError("channel has no entries")
    errors: list[str] = []
    seen: set[str] = set()
    incoming: dict[str, set[str]] = {}
    graph = ChannelGraph(head="")
    for entry in entries:
        if entry.name in seen:
            errors.append(f"duplicate channel entry {go_quote(entry.name)}")
            continue
        seen.add(entry.name)
        if entry.replaces:
            if entry.replaces == entry.name:
                errors.append(f"invalid channel entry {go_quote(entry.name)}: replaces itself")
            incoming.setdefault(entry.replaces, set()).add(entry.name)
            graph.replaces[entry.name] = entry.replaces
        for skip in entry.skips:
            if skip == entry.name:
                errors.append(f"invalid channel entry {go_quote(entry.name)}: skips itself")
            incoming.setdefault(skip, set()).add(entry.name)
        if entry.skips:
            graph.skips[entry.name] = tuple(dict.fromkeys(entry.skips))
    heads = [e.name for e in entries if not incoming.get(e.name)]
    if not heads:
        errors.append("no channel heads found")
    elif len(heads) > 1:
        errors.append(f"multiple channel heads found: [{' '.join(sorted(heads))}]")
    if errors:
        raise ChannelGraphError("\n".join(errors), sorted(heads))
    graph.head = heads[0]
    # Walk down from the head removing edges; an edge never walked means a cycle.
    queue = deque([graph.head])
    while queue:
        current = queue.popleft()
        for target in (graph.replaces.get(current), *graph.skips.get(current, ())):
            if target is None or target not in incoming:
                continue
            incoming[target].discard(current)
            if not incoming[target]:
                del incoming[target]
                queue.append(target)
    if incoming:
        raise ChannelGraphError("detected a cycle in the upgrade graph of the channel", [graph.head])
    return graph


def filter_channel_by_range(graph: ChannelGraph, version_range: VersionRange,
                            versions: Mapping[str, Version | None]) -> tuple[set[str], list[str]]:
    """Bundles catalog-filter keeps from a channel for a version range, and its warnings.

    Walking the replaces chain from the head, each node counts the in-range bundles at or below it
    (itself, its skips, everything under it; each bundle counted once, lowest node first). The new
    head is the lowest node with the largest count, the tail the first node whose count is 0. The
    chain from new head to tail is kept whole, in range or not, so the result keeps a single head;
    of the skips only the in-range ones are kept.
    """
    chain = graph.replaces_chain()

    memo: dict[str, bool] = {}

    def in_range(name: str) -> bool:
        if name not in memo:
            version = versions.get(name)
            memo[name] = version is not None and version_range.contains(version)
        return memo[name]

    counted: set[str] = set()
    counts: dict[str, int] = {}
    below = 0
    for name in reversed(chain):
        count = below
        for candidate in (name, *graph.skips.get(name, ())):
            if candidate not in counted and in_range(candidate):
                counted.add(candidate)
                count += 1
        counts[name] = below = count
    head_index, tail_index, best = 0, len(chain), -1
    for index, name in enumerate(chain):
        if counts[name] >= best:
            head_index, best = index, counts[name]
        if counts[name] == 0:
            tail_index = index
            break
    kept: set[str] = set()
    warnings: list[str] = []
    for name in chain[head_index:tail_index]:
        version = versions.get(name)
        if version is None:
            warnings.append(f"including bundle {go_quote(name)}: it is unversioned but is required to ensure "
                            "inclusion of all bundles in the range")
        elif not version_range.contains(version):
            warnings.append(f"including bundle {go_quote(name)} with version {go_quote(str(version))}: it falls "
                            f"outside the specified range of {go_quote(str(version_range))} but is required to "
                            "ensure inclusion of all bundles in the range")
        kept.add(name)
        kept.update(skip for skip in graph.skips.get(name, ()) if in_range(skip))
    return kept, warnings


# --------------------------------------------------------------------------------------------------
# Catalog filtering


@dataclass(slots=True)
class V2Result:
    """Everything catalog-filter produces for one catalog, beyond the Selection.

    `deprecations` and `others` are the olm.deprecations and unknown-schema blobs a rebuilt catalog
    must carry (deprecation entries trimmed to what was kept); `unfiltered` is True when oc-mirror
    mirrors the catalog image as it is (full: true without packages), so no rebuild is needed.
    """

    selection: Selection
    deprecations: list[dict[str, Any]] = field(default_factory=list)
    others: list[dict[str, Any]] = field(default_factory=list)
    unfiltered: bool = False


def select_v2(catalog: Catalog, spec: OperatorSpec) -> Selection:
    """Select bundles of one `mirror.operators[]` entry as oc-mirror v2 does."""
    return filter_catalog_v2(catalog, spec).selection


def filter_catalog_v2(catalog: Catalog, spec: OperatorSpec) -> V2Result:
    """catalog-filter's FilterCatalog on the edgebuild model; raises SelectionError as it fails."""
    if spec.full and not spec.packages:
        return _unfiltered(catalog)
    return _Filter(catalog, spec).run()


def _unfiltered(catalog: Catalog) -> V2Result:
    selection = Selection(catalog=catalog)
    for pkg in catalog.packages.values():
        selection.packages[pkg.name] = SelectedPackage(
            pkg.name, pkg.default_channel or "",
            {name: list(ch.entries) for name, ch in pkg.channels.items()})
    return V2Result(selection, copy.deepcopy(catalog.deprecations), copy.deepcopy(catalog.others), unfiltered=True)


class _Filter:
    """One run of the filter: the kept packages and channels, then per-channel selection."""

    def __init__(self, catalog: Catalog, spec: OperatorSpec) -> None:
        self.catalog = catalog
        self.spec = spec
        self.specs: dict[str, PackageSpec] = {p.name: p for p in spec.packages}
        self.selection = Selection(catalog=catalog)
        self.warnings = self.selection.warnings

    # -- which packages and channels take part

    def _kept_packages(self) -> list[Package]:
        if not self.specs:
            return list(self.catalog.packages.values())
        for name in self.specs:
            if name not in self.catalog.packages:
                self.warnings.append(
                    f"package {go_quote(name)} is not in catalog {self.spec.catalog}; oc-mirror ignores it and "
                    f"mirrors nothing for it{_nearest(name, self.catalog.packages)}")
        return [pkg for pkg in self.catalog.packages.values() if pkg.name in self.specs]

    def _kept_channels(self, pkg: Package) -> list[Channel]:
        pkg_spec = self.specs.get(pkg.name)
        if pkg_spec is None or not pkg_spec.channels:
            return list(pkg.channels.values())
        listed = [c.name for c in pkg_spec.channels]
        for name in (n for n in listed if n not in pkg.channels):
            self.warnings.append(
                f"channel {go_quote(name)} is not in package {go_quote(pkg.name)}; oc-mirror ignores it"
                f"{_nearest(name, pkg.channels)}")
        return [ch for ch in pkg.channels.values() if ch.name in listed]

    def _range_for(self, pkg: Package, channel: Channel) -> str:
        pkg_spec = self.specs.get(pkg.name)
        if pkg_spec is None:
            return ""
        for ch_spec in pkg_spec.channels:
            if ch_spec.name == channel.name:
                text = range_from_min_max(ch_spec.min_version, ch_spec.max_version)
                if text:
                    return text
        return range_from_min_max(pkg_spec.min_version, pkg_spec.max_version)

    # -- the run

    def run(self) -> V2Result:
        packages = self._kept_packages()
        channels = {pkg.name: self._kept_channels(pkg) for pkg in packages}
        versions = {pkg.name: _bundle_versions(pkg) for pkg in packages}
        defaults = {pkg.name: self._default_channel(pkg, channels[pkg.name]) for pkg in packages}
        kept_bundles: dict[str, set[str]] = {}
        for pkg in packages:
            selected = SelectedPackage(pkg.name, defaults[pkg.name] or "")
            for channel in channels[pkg.name]:
                entries, names = self._select_channel(pkg, channel, versions[pkg.name])
                kept_bundles.setdefault(pkg.name, set()).update(names)
                if entries is not None:
                    selected.channels[channel.name] = entries
            self._check_default_survived(pkg, selected)
            self.selection.packages[pkg.name] = selected
        self._warn_missing_dependencies()
        kept_channels = {name: {c.name for c in chs} for name, chs in channels.items() if chs}
        return V2Result(self.selection, self._deprecations(kept_bundles, kept_channels), self._others())

    def _default_channel(self, pkg: Package, kept: list[Channel]) -> str | None:
        """catalog-filter setDefaultChannel: checked on the kept channels, before any version filter."""
        pkg_spec = self.specs.get(pkg.name)
        if pkg_spec is None:
            return pkg.default_channel  # only listed packages are checked
        override = pkg_spec.default_channel
        names = [c.name for c in kept]
        if not pkg.default_channel and not override:
            return None
        prefix = f"invalid default channel configuration for package {go_quote(pkg.name)}: "
        if override:
            if override not in names:
                raise SelectionError(
                    prefix + f"specified default channel override {go_quote(override)} does not exist in the "
                    "filtered output",
                    f"catalog {self.spec.catalog}: the selected channels of {pkg.name} are "
                    f"{_listing(names)}; set defaultChannel to one of them or add channel "
                    f"'{override}' to the package's channels{_nearest(override, pkg.channels)}")
            return override
        if pkg.default_channel not in names:
            raise SelectionError(
                prefix + f"the default channel {go_quote(pkg.default_channel or '')} was filtered out, a new "
                "default channel must be configured for this package",
                f"catalog {self.spec.catalog}: add 'defaultChannel: <one of {_listing(names)}>' to package "
                f"{pkg.name}, or also list its default channel '{pkg.default_channel}'")
        return pkg.default_channel

    def _select_channel(self, pkg: Package, channel: Channel,
                        versions: dict[str, Version]) -> tuple[list[ChannelEntry] | None, set[str]]:
        """Kept entries of one channel (None = channel dropped) and the bundle names kept for it."""
        range_text = self._range_for(pkg, channel)
        where = f"package {go_quote(pkg.name)} channel {go_quote(channel.name)}"
        if self.spec.full and range_text:
            raise SelectionError("Full: true cannot be mixed with versionRange",
                                 f"catalog {self.spec.catalog}, {where}: remove 'full: true' or minVersion/maxVersion")
        if self.spec.full:
            return list(channel.entries), {e.name for e in channel.entries}
        if not range_text:
            return self._head_only(pkg, channel, versions)
        try:
            version_range = VersionRange.parse(range_text)
        except RangeError as exc:
            raise SelectionError(f"error parsing version range: {exc}",
                                 f"catalog {self.spec.catalog}, {where}: minVersion/maxVersion must be "
                                 "versions such as 1.2.3 or 1.2.3-rc.1") from None
        pinned = pinned_version(range_text)
        if pinned is not None:
            keep = {self._pinned_bundle(pkg, channel, pinned, versions)}
        else:
            graph = self._graph(pkg, channel, versions, wrap=False)
            keep, warnings = filter_channel_by_range(graph, version_range, versions)
            self.warnings.extend(f"{where}: {w}" for w in warnings)
        entries = [e for e in channel.entries if e.name in keep]
        if not keep:
            if channel.name == pkg.default_channel:
                raise SelectionError(
                    f"{where} has version range {go_quote(range_text)} that results in an empty channel",
                    f"catalog {self.spec.catalog}: {channel.name} is the package's default channel and no bundle "
                    f"of it is in range; its versions: {_versions_of(channel, versions)}")
            self.warnings.append(f"{where}: no bundle is in range {go_quote(range_text)}; oc-mirror drops the "
                                 f"channel (its versions: {_versions_of(channel, versions)})")
            return None, keep
        missing = sorted(keep - {e.name for e in entries})
        if missing:
            self.warnings.append(
                f"{where}: oc-mirror also keeps bundle(s) {', '.join(missing)}, which are not entries of this "
                "channel; edgebuild selects only channel entries" + ("; the channel is left without entries"
                                                                     if not entries else ""))
        return entries, keep

    def _head_only(self, pkg: Package, channel: Channel,
                   versions: dict[str, Version]) -> tuple[list[ChannelEntry], set[str]]:
        """The head entry, verbatim; graph errors are wrapped with the package and channel."""
        graph = self._graph(pkg, channel, versions, wrap=True)
        head_entry = next(e for e in channel.entries if e.name == graph.head)
        return [head_entry], {graph.head}

    def _graph(self, pkg: Package, channel: Channel, versions: dict[str, Version], wrap: bool) -> ChannelGraph:
        """newChannel; head-only filtering wraps its errors with the channel, range filtering does not."""
        try:
            return channel_graph(channel.entries)
        except ChannelGraphError as exc:
            message = str(exc)
            if wrap:
                message = (f"package {go_quote(pkg.name)} channel {go_quote(channel.name)} unable to filter head "
                           f"of channel: {message}")
            raise SelectionError(message, self._graph_hint(pkg, channel, exc, versions)) from None

    def _graph_hint(self, pkg: Package, channel: Channel, exc: ChannelGraphError,
                    versions: dict[str, Version]) -> str:
        where = f"catalog {self.spec.catalog}, package {pkg.name}, channel {channel.name}"
        if len(exc.heads) > 1:
            heads = sorted(exc.heads, key=lambda n: (versions.get(n) is not None, versions.get(n) or Version(0, 0, 0)))
            listed = ", ".join(f"{h} ({versions[h]})" if h in versions else f"{h} (unversioned)" for h in heads)
            best = heads[-1]
            pin = (f"minVersion: {versions[best]} and maxVersion: {versions[best]} on channel {channel.name} "
                   f"selects {best} alone" if best in versions else "pinning one head's version")
            return (f"{where}: the channel's upgrade graph has {len(heads)} heads: {listed}. oc-mirror v2 checks "
                    f"the whole channel graph before any version range, so a range cannot fix it; the nearest "
                    f"setting that gives one head is a pinned version ({pin}), or leave this channel out by "
                    f"listing other channels of {pkg.name}")
        return (f"{where}: the catalog's channel is not a valid upgrade graph; list other channels of "
                f"{pkg.name}, or pin a version with minVersion == maxVersion")

    def _pinned_bundle(self, pkg: Package, channel: Channel, pinned: str, versions: dict[str, Version]) -> str:
        """catalog-filter v0.0.5 (OCPBUGS-61497): min == max selects that version, searched package-wide."""
        try:
            wanted = Version.parse_lenient(pinned)
        except ValueError:
            raise SelectionError("error finding specific bundle: error parsing specific version: "
                                 "Invalid Semantic Version",
                                 f"catalog {self.spec.catalog}: {pinned!r} is not a version") from None
        matches = sorted(name for name, version in versions.items() if version == wanted)
        if not matches:
            raise SelectionError(
                f"error finding specific bundle: specific version {pinned} not found in bundles",
                f"catalog {self.spec.catalog}, package {pkg.name}: versions in channel {channel.name}: "
                f"{_versions_of(channel, versions)}")
        if len(matches) > 1:
            self.warnings.append(
                f"package {go_quote(pkg.name)}: bundles {', '.join(matches)} all have version {pinned}; oc-mirror "
                f"picks one of them at random, edgebuild takes {matches[0]}")
        return matches[0]

    def _check_default_survived(self, pkg: Package, selected: SelectedPackage) -> None:
        if selected.default_channel and selected.default_channel not in selected.channels:
            self.warnings.append(
                f"package {go_quote(pkg.name)}: default channel {go_quote(selected.default_channel)} was emptied by "
                "its version range and dropped; oc-mirror still names it as the default, so the rebuilt catalog "
                "is invalid; choose another defaultChannel or widen the range")

    def _warn_missing_dependencies(self) -> None:
        if not self.specs:
            return
        for bundle in self.selection.bundles():
            for req in bundle.required_packages:
                if req.package and req.package not in self.selection.packages:
                    self.warnings.append(
                        f"bundle {bundle.name} requires package {req.package}"
                        f"{' ' + req.version_range if req.version_range else ''}, which is not selected; "
                        "oc-mirror v2 does not add dependencies: list it under packages")

    # -- blobs beside packages

    def _deprecations(self, kept_bundles: dict[str, set[str]],
                      kept_channels: dict[str, set[str]]) -> list[dict[str, Any]]:
        out = []
        for blob in self.catalog.deprecations:
            package = blob.get("package")
            if self.specs and package not in self.specs:
                continue
            blob = copy.deepcopy(blob)
            if kept_bundles:
                blob["entries"] = [e for e in blob.get("entries") or []
                                   if _deprecation_kept(e, package, kept_bundles, kept_channels)]
            out.append(blob)
        return out

    def _others(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(b) for b in self.catalog.others
                if not self.specs or not b.get("package") or b.get("package") in self.specs]


def _deprecation_kept(entry: dict[str, Any], package: Any, kept_bundles: dict[str, set[str]],
                      kept_channels: dict[str, set[str]]) -> bool:
    """catalog-filter keeps package references, and channel/bundle references still present.

    The channel check uses the channels kept before version filtering (as catalog-filter's index
    does), so a channel dropped for an empty range keeps its deprecation entry.
    """
    ref = entry.get("reference") or {}
    schema, name = ref.get("schema"), ref.get("name")
    if schema == "olm.bundle":
        return package not in kept_bundles or name in kept_bundles[package]
    if schema == "olm.channel":
        return package not in kept_channels or name in kept_channels[package]
    return True


def _bundle_versions(pkg: Package) -> dict[str, Version]:
    """Every bundle version of a package, parsed strictly as catalog-filter's index does.

    catalog-filter fails the whole catalog on one bundle whose version is not strict SemVer.
    """
    out: dict[str, Version] = {}
    for bundle in pkg.bundles.values():
        if not bundle.version:
            raise SelectionError(
                f"bundle {go_quote(bundle.name)} in package {go_quote(pkg.name)} has no package property",
                "oc-mirror v2 cannot filter a catalog with a bundle without an olm.package version")
        try:
            out[bundle.name] = Version.parse(bundle.version)
        except ValueError:
            raise SelectionError(
                "invalid semantic version",
                f"bundle {bundle.name} of package {pkg.name} has version {bundle.version!r}, which is not "
                "strict SemVer (X.Y.Z[-pre][+build]); oc-mirror v2 fails the whole catalog on it") from None
    return out


def _versions_of(channel: Channel, versions: Mapping[str, Version]) -> str:
    found = sorted(versions[e.name] for e in channel.entries if e.name in versions)
    return ", ".join(str(v) for v in found) or "none"


def _listing(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names) if names else "(none)"


def _nearest(name: str, candidates: Iterable[str]) -> str:
    near = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(near)}?)" if near else ""
