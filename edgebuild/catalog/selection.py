"""The result of bundle selection for one catalog: which packages, channels and bundles stay.

Both oc-mirror semantics (v1 and v2) produce this same shape, so planning, rendering and catalog
rebuilding never need to know which rules chose the bundles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Bundle, Catalog, ChannelEntry


@dataclass(slots=True)
class SelectedPackage:
    """A package after filtering: its (possibly new) default channel and the kept channel entries.

    Entries are kept verbatim (dangling replaces/skips included), as both oc-mirror versions do.
    """

    name: str
    default_channel: str
    channels: dict[str, list[ChannelEntry]] = field(default_factory=dict)

    def bundle_names(self) -> set[str]:
        return {e.name for entries in self.channels.values() for e in entries}


@dataclass(slots=True)
class Selection:
    """Selected packages of one catalog plus the warnings selection raised on the way."""

    catalog: Catalog
    packages: dict[str, SelectedPackage] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def bundles(self) -> list[Bundle]:
        """Selected bundles, sorted by package then name (the order oc-mirror reports)."""
        out: list[Bundle] = []
        for pkg_name in sorted(self.packages):
            pkg = self.catalog.packages[pkg_name]
            for name in sorted(self.packages[pkg_name].bundle_names()):
                bundle = pkg.bundles.get(name)
                if bundle is not None:
                    out.append(bundle)
        return out

    def bundle_names(self) -> list[str]:
        return sorted(b.name for b in self.bundles())

    def summary(self) -> dict[str, dict]:
        """{package: {defaultChannel, channels: {channel: [sorted bundle names]}}} — the plan JSON shape."""
        return {
            name: {
                "defaultChannel": sp.default_channel,
                "channels": {ch: sorted({e.name for e in entries}) for ch, entries in sorted(sp.channels.items())},
            }
            for name, sp in sorted(self.packages.items())
        }
