"""Bundle selection with oc-mirror v1 semantics (ImageSetConfiguration `mirror.openshift.io/v1alpha2`).

This mirrors oc-mirror v1's `renderDCFull`/`renderDCDiff` and its diff engine (`DiffGenerator.Run`,
`DiffIncluder`, `addAllDependencies`, `verifyDC`), including the quirks users depend on:

* a lone `minVersion` means *that exact version* plus the replaces path to the channel head;
* a package-level range is plain membership on every channel and is not applied to listed channels,
  while a package-level `minVersion` re-adds (and overrides) every channel of the catalog;
* `minBundle` keeps the whole channel;
* dependencies are the newest satisfying bundle plus its replaces path to its channel head;
* the default channel falls back to a user override, a single listed channel, then channel priority.

Errors carry oc-mirror's text (tests and users match it) and, where oc-mirror is terse, a hint that
names the heads, their versions and a range that would work. The source catalog is validated first,
as oc-mirror's `declcfg.ConvertToModel` does, so every graph walk below may assume one head per
channel.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import ChannelSpec, OperatorSpec, PackageSpec
from ..errors import SelectionError
from ..semver import Version
from .graph import (
    ChannelGraphError,
    PackageView,
    channel_head,
    channel_heads,
    intersecting_bundles,
    replaced_by,
    validate_catalog,
    validate_packages,
)
from .model import GVK, Bundle, Catalog, Channel, ChannelEntry, Package
from .ranges_v1 import RangeError, VersionRange, any_version, parse_range
from .selection import SelectedPackage, Selection

INVALID_CATALOG_HINT = ('The rendered catalog is invalid. Run "oc-mirror list operators --catalog CATALOG-NAME '
                        '--package PACKAGE-NAME" (or "edgebuild list operators") for more information.')

# --------------------------------------------------------------------------------------------------
# Include configuration: the ISC packages as oc-mirror's DiffIncludeConfig sees them


@dataclass(slots=True)
class IncludeChannel:
    name: str
    versions: list[Version] = field(default_factory=list)
    bundles: list[str] = field(default_factory=list)
    range: VersionRange | None = None

    @property
    def is_set(self) -> bool:
        return bool(self.versions or self.bundles or self.range is not None)


@dataclass(slots=True)
class IncludePackage:
    name: str
    channels: list[IncludeChannel] = field(default_factory=list)
    all_versions: list[Version] = field(default_factory=list)  # pkg-level minVersion
    all_bundles: list[str] = field(default_factory=list)  # pkg-level minBundle
    range: VersionRange | None = None
    default_channel: str | None = None


def _range(text: str, what: str) -> VersionRange:
    try:
        return parse_range(text)
    except RangeError as exc:
        raise SelectionError(f"{what}: invalid version range {text!r}: {exc}",
                             hint="minVersion and maxVersion must be X.Y.Z versions, e.g. 1.2.0") from None


def _exact(text: str, what: str) -> Version:
    parsed = Version.try_parse(text)
    if parsed is None:
        raise SelectionError(f"{what}: minVersion {text!r} is not a semantic version",
                             hint="oc-mirror v1 needs exactly X.Y.Z, e.g. 1.2.0")
    return parsed


def _bounds(spec: PackageSpec | ChannelSpec, what: str
            ) -> tuple[VersionRange | None, list[Version], list[str]]:
    """(range, exact versions, bundle names) of one package or channel entry, as oc-mirror v1 reads it:
    min+max is a range, minVersion alone starts at that version, maxVersion alone is a range, and
    minBundle names a bundle."""
    if spec.min_version and spec.max_version:
        return _range(f">={spec.min_version} <={spec.max_version}", what), [], []
    if spec.min_version:
        return None, [_exact(spec.min_version, what)], []
    if spec.max_version:
        return _range(f"<={spec.max_version}", what), [], []
    return None, [], [spec.min_bundle] if spec.min_bundle else []


def include_package(spec: PackageSpec) -> IncludePackage:
    """oc-mirror v1alpha2 ConvertToDiffIncludeConfig for one package."""
    pkg = IncludePackage(spec.name, default_channel=spec.default_channel)
    what = f"package {spec.name!r}"
    pkg.range, pkg.all_versions, pkg.all_bundles = _bounds(spec, what)
    for ch in spec.channels:
        inc = IncludeChannel(ch.name)
        inc.range, inc.versions, inc.bundles = _bounds(ch, f"{what} channel {ch.name!r}")
        pkg.channels.append(inc)
    return pkg


# --------------------------------------------------------------------------------------------------
# Working model: selected entries per package and channel


OutModel = dict[str, dict[str, dict[str, ChannelEntry]]]  # package -> channel -> bundle name -> entry


def _quote(text: str) -> str:
    return json.dumps(text)


def _go_quoted_list(items: Iterable[str]) -> str:
    """Go's `%+q` of a []string: ["a" "b"]."""
    return "[" + " ".join(_quote(i) for i in items) + "]"


class _Run:
    """One oc-mirror v1 diff run over a catalog (DiffGenerator.Run with oldModel = `old`)."""

    def __init__(self, catalog: Catalog, warnings: list[str], old: Catalog | None = None) -> None:
        self.catalog = catalog
        self.old = old
        self.warnings = warnings
        self._versions: dict[tuple[str, str], Version | None] = {}
        self._heads: dict[tuple[str, str], ChannelEntry] = {}

    # -- facts about the source catalog ------------------------------------------------------------
    def version(self, package: str, name: str) -> Version | None:
        key = (package, name)
        if key not in self._versions:
            bundle = self.catalog.bundle(package, name)
            self._versions[key] = Version.try_parse(bundle.version) if bundle else None
        return self._versions[key]

    def head(self, channel: Channel) -> ChannelEntry:
        key = (channel.package, channel.name)
        if key not in self._heads:
            self._heads[key] = channel_head(channel.entries)
        return self._heads[key]

    # -- include phase (DiffIncluder.Run) ------------------------------------------------------------
    def include(self, includes: list[IncludePackage], heads_only: bool, out: OutModel) -> None:
        errors: list[str] = []
        for inc in includes:
            errors.extend(self._include_package(inc, heads_only, out))
        if errors:
            detail = "; ".join(errors)
            raise SelectionError("cannot select the configured operators: " + detail,
                                 hint=self._include_hint(includes))

    def _include_hint(self, includes: list[IncludePackage]) -> str | None:
        notes = []
        for inc in includes:
            pkg = self.catalog.packages.get(inc.name)
            if pkg is None:
                near = difflib.get_close_matches(inc.name, list(self.catalog.packages), n=3, cutoff=0.6)
                notes.append(f"package {inc.name!r} is not in the catalog"
                             + (f"; did you mean {', '.join(map(repr, near))}?" if near else ""))
                continue
            for ich in inc.channels:
                channel = pkg.channels.get(ich.name)
                if channel is not None and ich.versions:
                    have = sorted({v for e in channel.entries if (v := self.version(pkg.name, e.name))})
                    for want in ich.versions:
                        if want not in have and have:
                            pivot = _index_near(have, want)
                            nearby = have[max(0, pivot - 2):pivot + 2]
                            notes.append(f"channel {ich.name!r} of {inc.name!r} has no version {want}; nearest: "
                                         f"{', '.join(map(str, nearby))} (minVersion must name an existing version "
                                         "in oc-mirror v1; use maxVersion too for a range)")
                if ich.name not in pkg.channels:
                    near = difflib.get_close_matches(ich.name, list(pkg.channels), n=3, cutoff=0.5)
                    notes.append(f"package {inc.name!r} has no channel {ich.name!r}; its channels are "
                                 f"{', '.join(sorted(pkg.channels))}"
                                 + (f" (nearest: {', '.join(near)})" if near else ""))
        return "; ".join(notes) or None

    def _include_package(self, inc: IncludePackage, heads_only: bool, out: OutModel) -> list[str]:
        pkg = self.catalog.packages.get(inc.name)
        if pkg is None:
            return [f"package {_quote(inc.name)} is not in the catalog"]
        channels = list(inc.channels)
        if not channels and not inc.all_versions and not inc.all_bundles and inc.range is None:
            if not heads_only:
                out[inc.name] = {c.name: {e.name: e for e in c.entries} for c in pkg.channels.values()}
                return []
            channels = [IncludeChannel(name) for name in sorted(pkg.channels)]
        out_pkg: dict[str, dict[str, ChannelEntry]] = {}
        out[inc.name] = out_pkg
        errors: list[str] = []
        skip_missing: set[str] = set()
        if inc.range is not None:
            if channels:
                for ich in channels:
                    if ich.range is not None:
                        errors.append(f"[package={_quote(pkg.name)} channel={_quote(ich.name)}] range setting is "
                                      "mutually exclusive between package and channel")
            else:
                channels = [IncludeChannel(name, range=inc.range) for name in sorted(pkg.channels)]
        elif inc.all_versions or inc.all_bundles:
            if inc.channels:
                self.warnings.append(
                    f"package {pkg.name!r}: a package-level minVersion/minBundle makes oc-mirror v1 re-select every "
                    f"channel of the package from that version, replacing what the listed channels "
                    f"({', '.join(c.name for c in inc.channels)}) selected; put minVersion on each channel instead")
            for name in sorted(pkg.channels):
                channels.append(IncludeChannel(name, versions=list(inc.all_versions), bundles=list(inc.all_bundles)))
                skip_missing.add(name)
        for ich in channels:
            channel = pkg.channels.get(ich.name)
            if channel is None:
                errors.append(f"package {_quote(pkg.name)} has no channel {_quote(ich.name)}")
                continue
            try:
                if heads_only and not ich.is_set:
                    selected = [self.head(channel)]
                elif ich.range is not None:
                    selected = [e for e in channel.entries if ich.range.matches(self.version(pkg.name, e.name))]
                else:
                    selected = self._for_versions(channel, ich, ich.name in skip_missing)
            except (ChannelGraphError, _MissingBundles) as exc:
                sep = " " if isinstance(exc, _MissingBundles) else ": "
                errors.append(f"channel {_quote(channel.name)} of package {_quote(pkg.name)}{sep}{exc}")
                continue
            out_pkg[ich.name] = {e.name: e for e in selected}
        return errors

    def _matches(self, package: str, entry: ChannelEntry, version: Version) -> bool:
        own = self.version(package, entry.name)
        if own is None:
            return False
        # OCPBUGS-588: a bundle version with a build suffix (1.2.3-202301010000) matches minVersion 1.2.3.
        return own == version or (not version.prerelease and own.release == version and bool(own.prerelease))

    def _for_versions(self, channel: Channel, ich: IncludeChannel, skip_missing: bool) -> list[ChannelEntry]:
        """getBundlesForVersions: exact versions/names plus their upgrade graph; no versions = whole channel."""
        if not ich.versions:
            if ich.bundles:
                self.warnings.append(f"package {channel.package!r} channel {channel.name!r}: minBundle "
                                     f"{', '.join(ich.bundles)} has no effect: oc-mirror v1 keeps the whole channel")
            return list(channel.entries)
        names = set(ich.bundles)
        starts = [e for e in channel.entries
                  if e.name in names or any(self._matches(channel.package, e, v) for v in ich.versions)]
        if not skip_missing:
            missing_versions = [str(v) for v in ich.versions
                                if not any(self._matches(channel.package, e, v) for e in starts)]
            missing_names = [n for n in ich.bundles if n not in {e.name for e in starts}]
            if missing_versions or missing_names:
                parts = []
                if missing_versions:
                    parts.append("version " + ", ".join(missing_versions))
                if missing_names:
                    parts.append("bundle " + ", ".join(missing_names))
                raise _MissingBundles("has no " + " and no ".join(parts))
        return self._fill_upgrade_graph(channel, starts)

    def _fill_upgrade_graph(self, channel: Channel, starts: list[ChannelEntry]) -> list[ChannelEntry]:
        if not starts:
            return []
        head = self.head(channel)
        by_name = {e.name: e for e in channel.entries}
        graph = replaced_by(channel.entries)
        selected: dict[str, ChannelEntry] = {}
        for start in starts:
            if start.name in selected:
                continue
            filled = intersecting_bundles(by_name, start, head, graph)
            if filled is None:
                self.warnings.append(f"package {channel.package!r} channel {channel.name!r}: head {head.name} is not "
                                     f"reachable from {start.name} over 'replaces'; {start.name} is added alone")
                selected[start.name] = start
                continue
            for e in filled:
                selected[e.name] = e
        for start in starts:
            selected.setdefault(start.name, start)
        return list(selected.values())

    # -- heads of every channel / latest diff ---------------------------------------------------------
    def add_heads(self, out: OutModel) -> None:
        """Heads-only mode: the head of every channel of every package not already included."""
        for pkg in self.catalog.packages.values():
            out_pkg = out.setdefault(pkg.name, {})
            for channel in pkg.channels.values():
                if channel.name not in out_pkg:
                    head = self.head(channel)
                    out_pkg[channel.name] = {head.name: head}

    def add_latest(self, out: OutModel) -> None:
        """Latest mode against an old catalog: the new catalog minus bundles identical in the old one."""
        for pkg in self.catalog.packages.values():
            if pkg.name not in out:
                out[pkg.name] = {c.name: {e.name: e for e in c.entries} for c in pkg.channels.values()}
        self.prune_old(out)

    def prune_old(self, out: OutModel) -> None:
        if self.old is None:
            return
        for pkg_name in list(out):
            old_pkg = self.old.packages.get(pkg_name)
            if old_pkg is None:
                continue
            new_pkg = self.catalog.packages[pkg_name]
            for ch_name in list(out[pkg_name]):
                old_ch = old_pkg.channels.get(ch_name)
                if old_ch is None:
                    continue
                old_names = {e.name for e in old_ch.entries}
                for name in list(out[pkg_name][ch_name]):
                    if name in old_names and _bundles_equal(old_pkg.bundles.get(name), new_pkg.bundles.get(name)):
                        del out[pkg_name][ch_name][name]
                if not out[pkg_name][ch_name]:
                    del out[pkg_name][ch_name]
            if not out[pkg_name]:
                del out[pkg_name]

    # -- dependencies (addAllDependencies) ---------------------------------------------------------------
    def add_dependencies(self, out: OutModel) -> None:
        """Add the newest bundle satisfying each olm.package.required / olm.gvk.required, with its path."""
        providing: dict[str, list[tuple[str, str]]] = {}  # package -> [(channel, bundle)]
        visited: set[tuple[str, str, str]] = set()
        current: list[tuple[str, str]] = [(p, n) for p, chans in out.items() for ch in chans.values() for n in ch]
        current_ids: list[tuple[str, str, str]] = []
        while current:
            visited.update(current_ids)
            req_gvks, req_pkgs = self._requirements(current)
            if not req_gvks and not req_pkgs:
                break
            current, current_ids = [], []
            for pkg_name in sorted(self.catalog.packages):
                pkg = self.catalog.packages[pkg_name]
                for ch_name, name in self._providers(pkg, req_gvks, req_pkgs):
                    ident = (pkg_name, ch_name, name)
                    if ident in visited or ident in current_ids:
                        continue
                    current.append((pkg_name, name))
                    current_ids.append(ident)
                    if not self._in_old(pkg_name, ch_name, name):
                        providing.setdefault(pkg_name, []).append((ch_name, name))
        for pkg_name, found in providing.items():
            pkg = self.catalog.packages[pkg_name]
            found.sort(key=lambda cb: (cb[0], self.version(pkg_name, cb[1]) or Version(0, 0, 0)))
            for ch_name, name in found:
                if name in out.get(pkg_name, {}).get(ch_name, {}):
                    continue
                channel = pkg.channels[ch_name]
                head = self.head(channel)
                if name in head.skips:
                    # OCPBUGS-11371: a dependency the channel head skips is not mirrored.
                    self.warnings.append(f"dependency {name} (package {pkg_name!r}, channel {ch_name!r}) is skipped "
                                         f"by the channel head {head.name}; oc-mirror v1 does not add it")
                    continue
                by_name = {e.name: e for e in channel.entries}
                filled = intersecting_bundles(by_name, by_name[name], head, replaced_by(channel.entries))
                if filled is None:
                    raise SelectionError(f"error generating diff: channel {ch_name}: head {_quote(head.name)} not "
                                         f"reachable from bundle {_quote(name)}",
                                         hint=f"package {pkg_name!r}: {name} is not on the replaces chain of "
                                              f"{head.name}; list the package with a channel that contains both")
                out_ch = out.setdefault(pkg_name, {}).setdefault(ch_name, {})
                for e in filled:
                    out_ch.setdefault(e.name, e)

    def _in_old(self, package: str, channel: str, name: str) -> bool:
        if self.old is None:
            return False
        old_pkg = self.old.packages.get(package)
        old_ch = old_pkg.channels.get(channel) if old_pkg else None
        return old_ch is not None and any(e.name == name for e in old_ch.entries)

    def _requirements(self, bundles: list[tuple[str, str]]) -> tuple[set[GVK], dict[str, list[VersionRange]]]:
        gvks: set[GVK] = set()
        pkgs: dict[str, list[VersionRange]] = {}
        for pkg_name, name in bundles:
            bundle = self.catalog.bundle(pkg_name, name)
            if bundle is None:
                continue
            gvks.update(bundle.required_gvks)
            for req in bundle.required_packages:
                if req.version_range:
                    try:
                        rng = parse_range(req.version_range)
                    except RangeError as exc:
                        raise SelectionError(f"bundle {name}: invalid olm.package.required versionRange "
                                             f"{req.version_range!r} for package {req.package!r}: {exc}") from None
                else:
                    rng = any_version()
                pkgs.setdefault(req.package, []).append(rng)
        return gvks, pkgs

    def _providers(self, pkg: Package, req_gvks: set[GVK],
                   req_pkgs: dict[str, list[VersionRange]]) -> list[tuple[str, str]]:
        """getBundlesThatProvide: per GVK and per range, the newest bundle (default channel wins ties)."""
        ranges = req_pkgs.get(pkg.name)
        by_range: list[list[tuple[str, str]]] = [[] for _ in ranges or ()]
        by_gvk: dict[GVK, list[tuple[str, str]]] = {}
        for ch_name in sorted(pkg.channels):
            for e in pkg.channels[ch_name].entries:
                bundle = pkg.bundles.get(e.name)
                if bundle is None:
                    continue
                for gvk in bundle.provided_gvks:
                    if gvk in req_gvks:
                        by_gvk.setdefault(gvk, []).append((ch_name, e.name))
                version = self.version(pkg.name, e.name)
                for i, rng in enumerate(ranges or ()):
                    if version is not None and rng(version):
                        by_range[i].append((ch_name, e.name))
        latest: dict[str, tuple[str, str]] = {}

        def newest(candidates: list[tuple[str, str]]) -> tuple[str, str]:
            return max(candidates, key=lambda cb: (self.version(pkg.name, cb[1]) or Version(0, 0, 0),
                                                   cb[0] == pkg.default_channel, cb[0]))

        for gvk in sorted(by_gvk, key=lambda g: (g.group, g.version, g.kind)):
            pick = newest(by_gvk[gvk])
            latest[str(self.version(pkg.name, pick[1]))] = pick
            req_gvks.discard(gvk)
        unsatisfied = 0
        for candidates in by_range:
            if not candidates:
                unsatisfied += 1
                continue
            pick = newest(candidates)
            latest[str(self.version(pkg.name, pick[1]))] = pick
        if ranges is not None and not unsatisfied:
            del req_pkgs[pkg.name]
        return list(latest.values())


class _MissingBundles(ValueError):
    """A channel-level minVersion that the channel does not contain."""


def _bundles_equal(a: Bundle | None, b: Bundle | None) -> bool:
    """Same bundle content (oc-mirror hashes the whole blob; edgebuild compares what it keeps of it)."""
    return a is not None and b is not None and a == b


# --------------------------------------------------------------------------------------------------
# Default channel, validation, result


def _priority(channel: Channel) -> int | None:
    for prop in channel.properties:
        if prop.get("type") == "olm.channel":
            value = prop.get("value") or {}
            priority = value.get("priority", 0)
            return priority if isinstance(priority, int) else 0
    return channel.priority


def _default_channels(catalog: Catalog, out: OutModel, includes: dict[str, IncludePackage],
                      warnings: list[str]) -> dict[str, str]:
    """The output default channel per package (end of DiffGenerator.Run)."""
    defaults: dict[str, str] = {}
    for pkg_name in sorted(out):
        src = catalog.packages[pkg_name]
        inc = includes.get(pkg_name)
        if src.default_channel and src.default_channel in out[pkg_name]:
            defaults[pkg_name] = src.default_channel
            if inc and inc.default_channel and inc.default_channel != src.default_channel:
                warnings.append(f"package {pkg_name!r}: defaultChannel {inc.default_channel!r} has no effect: the "
                                f"catalog default channel {src.default_channel!r} is kept because it was selected")
            continue
        if inc and inc.default_channel and inc.default_channel in src.channels:
            defaults[pkg_name] = inc.default_channel
            continue
        if inc and len(inc.channels) == 1:
            defaults[pkg_name] = inc.channels[0].name
            continue
        ranked = [(p, name) for name in out[pkg_name] if (p := _priority(src.channels[name])) is not None]
        if ranked:
            top = max(p for p, _ in ranked)
            tied = sorted(name for p, name in ranked if p == top)
            if len(tied) > 1:
                warnings.append(f"package {pkg_name!r}: channels {', '.join(tied)} share priority {top}; "
                                f"{tied[0]} was chosen as default channel")
            defaults[pkg_name] = tied[0]
            warnings.append(f"package {pkg_name!r}: the catalog default channel {src.default_channel!r} was filtered "
                            f"out; {tied[0]!r} (highest olm.channel priority) becomes the default channel")
            continue
        raise SelectionError(
            f"error generating diff: the current default channel {_quote(src.default_channel or '')} for package "
            f"{_quote(pkg_name)} could not be determined... ensure that your ImageSetConfiguration filtering criteria "
            f"results in a package version that exists in the current default channel or use the 'defaultChannel' "
            f"field ",
            hint=f"selected channels of {pkg_name!r}: {', '.join(sorted(out[pkg_name]))}; add "
                 f"'defaultChannel: <one of them>' to the package, or select a version of channel "
                 f"{src.default_channel!r}")
    return defaults


def _validate_source(catalog: Catalog) -> None:
    """declcfg.ConvertToModel on the source: oc-mirror v1 refuses an invalid catalog before filtering."""
    message = validate_catalog(catalog)
    if message is not None:
        raise SelectionError("error converting new declarative config to model: " + message,
                             hint=f"the source catalog {catalog.source or ''} itself breaks operator-registry's "
                                  "rules; rebuild it with 'opm validate' passing")


def _validate_output(catalog: Catalog, out: OutModel, defaults: dict[str, str],
                     includes: dict[str, IncludePackage]) -> None:
    """verifyDC: the filtered catalog must be a valid model and contain every listed package."""
    views = []
    for pkg_name, channels in out.items():
        src = catalog.packages[pkg_name]
        views.append(PackageView(pkg_name, defaults[pkg_name],
                                 {ch: [e for e in src.channels[ch].entries if e.name in sel]
                                  for ch, sel in channels.items()}))
    tree = validate_packages(views)
    if tree is not None:
        raise SelectionError(tree.render(), hint=_validation_hint(catalog, views, includes))
    for inc in includes.values():
        if inc.name not in out:
            raise SelectionError(
                f"Operator {inc.name} was not found, please check name, minVersion, maxVersion, and channels in the "
                "config file.", hint=_not_found_hint(catalog, inc))


def _not_found_hint(catalog: Catalog, inc: IncludePackage) -> str:
    pkg = catalog.packages[inc.name]
    versions = sorted({v for b in pkg.bundles.values() if (v := Version.try_parse(b.version))})
    span = f"{versions[0]} .. {versions[-1]}" if versions else "none"
    return (f"no bundle of package {inc.name!r} matched the filter; its versions span {span} "
            f"in channels {', '.join(sorted(pkg.channels))}")


def _validation_hint(catalog: Catalog, views: list[PackageView], includes: dict[str, IncludePackage]) -> str:
    notes = []
    for view in views:
        for ch_name, entries in view.channels.items():
            heads = channel_heads(entries)
            if len(heads) < 2:
                continue
            src_pkg = catalog.packages[view.name]
            described = ", ".join(f"{h} ({_version_text(src_pkg, h)})" for h in heads)
            note = f"package {view.name!r} channel {ch_name!r} has {len(heads)} heads: {described}"
            suggestion = _single_head_suggestion(src_pkg, src_pkg.channels[ch_name], includes.get(view.name))
            if suggestion:
                note += f"; {suggestion}"
            notes.append(note)
    notes.append(INVALID_CATALOG_HINT)
    notes.append("Please check the minVersion, maxVersion, and default channel for each invalid package.")
    return "\n  ".join(notes)


def _version_text(pkg: Package, name: str) -> str:
    bundle = pkg.bundles.get(name)
    return bundle.version if bundle and bundle.version else "no version"


def _single_head_suggestion(pkg: Package, channel: Channel, inc: IncludePackage | None) -> str | None:
    """The nearest maxVersion / minVersion that leaves this channel with exactly one head."""
    if inc is None:
        return None
    ich = next((c for c in inc.channels if c.name == channel.name), None)
    rng = ich.range if ich is not None and ich.range is not None else inc.range
    if rng is None:
        return None
    low = next((c.version for g in rng.groups for c in g if c.op in (">=", ">")), None)
    high = next((c.version for g in rng.groups for c in g if c.op in ("<=", "<")), None)
    versions = {e.name: Version.try_parse(pkg.bundles[e.name].version) if e.name in pkg.bundles else None
                for e in channel.entries}
    candidates = sorted({v for v in versions.values() if v is not None})

    def one_head(lo: Version | None, hi: Version | None) -> str | None:
        kept = [e for e in channel.entries if (v := versions[e.name]) is not None
                and (lo is None or v >= lo) and (hi is None or v <= hi)]
        heads = channel_heads(kept)
        return heads[0] if kept and len(heads) == 1 else None

    def nearest(target: Version, widen: int) -> list[Version]:
        # Candidates ordered by distance (in releases) from the current bound, ties going to the one that
        # widens the range (keeps more bundles); at most 200 are tried.
        pivot = _index_near(candidates, target)
        ranked = sorted((abs(i - pivot), -widen * i, v) for i, v in enumerate(candidates))
        return [v for _, _, v in ranked][:200]

    options = []
    if high is not None:
        for v in nearest(high, widen=1):
            if (low is None or v >= low) and (head := one_head(low, v)):
                options.append(f"maxVersion {v} (head {head})")
                break
    if low is not None:
        for v in nearest(low, widen=-1):
            if (high is None or v <= high) and (head := one_head(v, high)):
                options.append(f"minVersion {v} (head {head})")
                break
    return ("a single head remains with " + " or ".join(options)) if options else None


def _index_near(sorted_versions: list[Version], target: Version) -> int:
    for i, v in enumerate(sorted_versions):
        if v >= target:
            return i
    return len(sorted_versions) - 1


def _selection(catalog: Catalog, out: OutModel, defaults: dict[str, str], warnings: list[str]) -> Selection:
    selection = Selection(catalog=catalog, warnings=warnings)
    for pkg_name in sorted(out):
        src = catalog.packages[pkg_name]
        channels = {ch: [e for e in src.channels[ch].entries if e.name in sel]
                    for ch, sel in sorted(out[pkg_name].items())}
        selection.packages[pkg_name] = SelectedPackage(pkg_name, defaults[pkg_name], channels)
    return selection


def _whole_catalog(catalog: Catalog, warnings: list[str]) -> Selection:
    selection = Selection(catalog=catalog, warnings=warnings)
    for pkg in sorted(catalog.packages.values(), key=lambda p: p.name):
        selection.packages[pkg.name] = SelectedPackage(
            pkg.name, pkg.default_channel or "", {c.name: list(c.entries) for c in pkg.channels.values()})
    return selection


# --------------------------------------------------------------------------------------------------
# Incremental state (oc-mirror v1 storageConfig metadata, heads-only catalogs)


def selection_state(selection: Selection) -> dict[str, Any]:
    """A JSON-serialisable record of a run, for the next incremental run (`previous=`).

    `{package: {channel: {"startingVersion": lowest selected version, "bundles": [names]}}}` —
    oc-mirror v1 stores the lowest version of each channel as the channel's starting point.
    """
    state: dict[str, Any] = {}
    for pkg_name, sp in selection.packages.items():
        pkg = selection.catalog.packages[pkg_name]
        for ch_name, entries in sp.channels.items():
            versions = [v for e in entries if (b := pkg.bundles.get(e.name)) and (v := Version.try_parse(b.version))]
            state.setdefault(pkg_name, {})[ch_name] = {
                "startingVersion": str(min(versions)) if versions else None,
                "bundles": sorted(e.name for e in entries),
            }
    return state


def _next_version(channel_versions: list[Version], target: Version) -> Version | None:
    """findNextBundle: the lowest channel version above a starting version that was pruned."""
    higher = sorted(v for v in channel_versions if v > target)
    return higher[0] if higher else None


def _incremental_includes(run: _Run, packages: dict[str, dict[str, dict[str, ChannelEntry]]],
                          previous: dict[str, Any], keep: dict[str, IncludePackage]) -> list[IncludePackage]:
    """UpdateIncludeConfig: per channel, the previous starting version (or the next one if pruned)."""
    includes = []
    for pkg_name in sorted(packages):
        if pkg_name in keep:
            includes.append(keep[pkg_name])
            continue
        inc = IncludePackage(pkg_name)
        prev_pkg = previous.get(pkg_name)
        for ch_name in sorted(packages[pkg_name]):
            ich = IncludeChannel(ch_name)
            prev = (prev_pkg or {}).get(ch_name) if prev_pkg is not None else None
            start = Version.try_parse((prev or {}).get("startingVersion") or "") if prev else None
            if start is not None:
                channel = run.catalog.packages[pkg_name].channels[ch_name]
                versions = [v for e in channel.entries if (v := run.version(pkg_name, e.name)) is not None]
                if start not in versions:
                    start = _next_version(versions, start)
                    if start is None:
                        run.warnings.append(f"package {pkg_name!r} channel {ch_name!r}: nothing newer than the "
                                            f"previous run remains; mirroring the channel head")
                if start is not None:
                    ich.versions = [start]
            inc.channels.append(ich)
        includes.append(inc)
    return includes


def _check_previous(previous: Any) -> dict[str, Any]:
    if not isinstance(previous, dict) or not all(isinstance(v, dict) for v in previous.values()):
        raise SelectionError("previous run state is not in the form {package: {channel: {startingVersion, bundles}}}",
                             hint="pass the value returned by selection_state() of the earlier run")
    return previous


# --------------------------------------------------------------------------------------------------
# Entry point


def _check_default_channels(spec: OperatorSpec) -> None:
    """oc-mirror v1 refuses a package whose defaultChannel is not one of its listed channels (also when
    it lists none), before it reads any catalog (pkg/cli/mirror/mirror.go, MirrorOptions.Run)."""
    for pkg in spec.packages:
        if pkg.default_channel and pkg.default_channel not in {c.name for c in pkg.channels}:
            dc = pkg.default_channel
            raise SelectionError(
                f"defaultChannel has been set with '{dc}', please ensure that '{dc}' is declared in the channels "
                f"section for the package '{pkg.name}' in the config ",
                hint=f"add '- name: {dc}' under channels of package {pkg.name!r} (oc-mirror v1 then keeps that "
                     f"channel's head), or remove defaultChannel")


def select_v1(catalog: Catalog, spec: OperatorSpec, previous: Any = None) -> Selection:
    """Select bundles of `catalog` for one `mirror.operators[]` entry the way oc-mirror v1 does.

    `previous` is either the `selection_state()` of an earlier run (incremental heads-only
    mirroring with a storageConfig), or an older `Catalog` (oc-mirror's library-level "latest" diff:
    only bundles that are new or changed since that catalog). Raises SelectionError as oc-mirror fails.
    """
    _check_default_channels(spec)
    warnings: list[str] = []
    heads_only = not spec.full
    if spec.full and not spec.packages and not isinstance(previous, Catalog):
        return _whole_catalog(catalog, warnings)  # action.Render: no filtering, no validation
    _validate_source(catalog)
    old = previous if isinstance(previous, Catalog) else None
    if old is not None:
        _validate_source(old)
    run = _Run(catalog, warnings, old)
    includes = {p.name: include_package(p) for p in spec.packages}
    out: OutModel = {}
    if isinstance(previous, dict) and heads_only:
        state = _check_previous(previous)
        if includes:
            # Listed packages only: their channels as a full (not heads-only) include would select them;
            # dependencies are resolved again by the final run.
            first: OutModel = {}
            run.include(list(includes.values()), heads_only=False, out=first)
            keep = {n: inc for n, inc in includes.items()
                    if inc.range or inc.all_versions or inc.all_bundles or any(c.is_set for c in inc.channels)}
            final = _incremental_includes(run, first, {k: v for k, v in state.items()}, keep)
        else:
            every: dict[str, dict[str, Any]] = {p.name: {c: {} for c in p.channels}
                                                for p in catalog.packages.values()}
            final = _incremental_includes(run, every, state, {})
        for inc in final:
            if inc.name in includes:
                inc.default_channel = includes[inc.name].default_channel
        run.include(final, heads_only=True, out=out)
        listed = {inc.name: inc for inc in final}
    elif includes:
        run.include(list(includes.values()), heads_only=heads_only, out=out)
        run.prune_old(out)
        listed = includes
    elif heads_only:
        run.add_heads(out)
        listed = {}
    else:
        run.add_latest(out)
        listed = {}
    for pkg_name in list(out):
        for ch_name in [c for c, sel in out[pkg_name].items() if not sel]:
            del out[pkg_name][ch_name]
        if not out[pkg_name]:
            del out[pkg_name]
    if not spec.skip_dependencies:
        run.add_dependencies(out)
    defaults = _default_channels(catalog, out, listed if listed else includes, warnings)
    _validate_output(catalog, out, defaults, includes if not isinstance(previous, dict) else {})
    return _selection(catalog, out, defaults, warnings)
