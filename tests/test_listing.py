"""`edgebuild list operators` data on the real community catalogs, checked against SOURCE.md and the YAML itself."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from edgebuild.catalog import listing
from edgebuild.catalog.loader import load_catalog_dir
from edgebuild.catalog.model import Catalog, Channel, ChannelEntry, Package
from edgebuild.errors import CatalogError, UsageError
from tests.conftest import require_shared


def load(catalog_set: str) -> Catalog:
    """A real catalog of ../shared (the test skips without it), parsed once per test run."""
    return _parsed(require_shared("catalogs", catalog_set))


@cache
def _parsed(path: Path) -> Catalog:
    return load_catalog_dir(path)


def source_table() -> dict[str, dict[str, int]]:
    """The counts table of catalogs/SOURCE.md: set -> {packages, channels, bundles, related}."""
    rows = {}
    for line in require_shared("catalogs", "SOURCE.md").read_text().splitlines():
        m = re.match(r"^\|\s*(community-operators-v[\d.]+)\s*" + r"\|\s*(\d+)\s*" * 4 + r"\|", line)
        if m:
            counts = map(int, m.groups()[1:])
            rows[m.group(1)] = dict(zip(("packages", "channels", "bundles", "related"), counts, strict=True))
    return rows


@pytest.fixture(scope="module", params=["community-operators-v4.15", "community-operators-v4.17"])
def loaded(request) -> tuple[str, Catalog]:
    return request.param, load(request.param)


def read_package_yaml(catalog_set: str, package: str) -> list[dict]:
    with open(require_shared("catalogs", catalog_set, package, "catalog.yaml"), "rb") as fh:
        return [d for d in yaml.load_all(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]


def test_counts_match_source_md(loaded) -> None:
    name, catalog = loaded
    expected = source_table()[name]
    packages = listing.to_json(catalog)["packages"]
    channels = [c for p in packages for c in listing.to_json(catalog, p["name"])["channels"]]
    bundles = {(p["name"], b["name"]) for p in packages for c in listing.to_json(catalog, p["name"])["channels"]
               for b in listing.to_json(catalog, p["name"], c["name"])["bundles"]}
    assert len(packages) == expected["packages"]
    assert len(channels) == expected["channels"]
    # bundles reachable from channels: every bundle of these catalogs is in some channel
    assert len(bundles) == catalog.bundle_count == expected["bundles"]
    related = sum(len(b.related_images) for p in catalog.packages.values() for b in p.bundles.values())
    assert related == expected["related"]


@pytest.mark.parametrize("package", ["infinispan", "project-quay", "sailoperator", "opendatahub-operator"])
def test_defaults_and_heads_match_the_yaml(package: str) -> None:
    catalog_set = "community-operators-v4.17"
    docs = read_package_yaml(catalog_set, package)
    default = next(d["defaultChannel"] for d in docs if d["schema"] == "olm.package")
    versions = {d["name"]: next(p["value"]["version"] for p in d["properties"] if p["type"] == "olm.package")
                for d in docs if d["schema"] == "olm.bundle"}
    expected_heads = {}
    for d in (d for d in docs if d["schema"] == "olm.channel"):
        names = {e["name"] for e in d["entries"]}
        replaced = {e.get("replaces") for e in d["entries"]} | {s for e in d["entries"] for s in e.get("skips", [])}
        expected_heads[d["name"]] = sorted(names - replaced)

    catalog = load(catalog_set)
    assert listing.to_json(catalog)["packages"] == sorted(listing.to_json(catalog)["packages"], key=lambda p: p["name"])
    assert {"name": package, "defaultChannel": default} in listing.to_json(catalog)["packages"]
    data = listing.to_json(catalog, package)
    assert data["defaultChannel"] == default
    got = {c["name"]: c for c in data["channels"]}
    assert set(got) == set(expected_heads)
    for channel, heads in expected_heads.items():
        assert got[channel]["heads"] == heads
        if len(heads) == 1:
            assert got[channel]["head"] == heads[0]
            assert got[channel]["headVersion"] == versions[heads[0]]


def test_versions_are_in_upgrade_order_ending_at_the_head() -> None:
    catalog = load("community-operators-v4.17")
    for package in ("infinispan", "project-quay"):
        pkg = catalog.packages[package]
        for channel_name, channel in pkg.channels.items():
            order = [b["name"] for b in listing.to_json(catalog, package, channel_name)["bundles"]]
            assert sorted(order) == sorted(e.name for e in channel.entries)
            position = {name: i for i, name in enumerate(order)}
            for entry in channel.entries:
                for older in (entry.replaces, *entry.skips):
                    if older in position and older != entry.name:
                        assert position[older] < position[entry.name], (channel_name, older, entry.name)
            heads = listing.to_json(catalog, package)["channels"]
            head = next(c["head"] for c in heads if c["name"] == channel_name)
            assert order[-1] == head


def test_text_output_is_aligned_columns() -> None:
    catalog = load("community-operators-v4.15")
    lines = listing.format_text(catalog).splitlines()
    assert lines[0].split() == ["NAME", "DEFAULT", "CHANNEL"]
    column = lines[0].index("DEFAULT")
    assert all(line[column - 2:column] == "  " and line[column] != " " for line in lines[1:])
    assert len(lines) == 1 + len(catalog.packages)

    catalog = load("community-operators-v4.17")
    text = listing.format_text(catalog, "infinispan")
    assert "PACKAGE" in text and "HEAD" in text
    versions = listing.format_text(catalog, "infinispan", "stable").splitlines()
    assert versions[0].split() == ["BUNDLE", "VERSION"]


def test_unknown_package_lists_the_nearest_names() -> None:
    catalog = load("community-operators-v4.17")
    with pytest.raises(listing.UnknownNameError) as info:
        listing.to_json(catalog, "infinispn")
    assert info.value.nearest[0] == "infinispan"
    assert "has no package 'infinispn'" in str(info.value) and "did you mean: infinispan" in str(info.value)
    with pytest.raises(CatalogError, match="rabbitmq-cluster-operator"):
        listing.format_text(catalog, "rabbitmq")


def test_unknown_channel_lists_the_nearest_names() -> None:
    catalog = load("community-operators-v4.17")
    with pytest.raises(listing.UnknownNameError, match=r"package infinispan has no channel 'stabel'") as info:
        listing.to_json(catalog, "infinispan", "stabel")
    assert info.value.nearest == ["stable"]
    with pytest.raises(CatalogError, match="run without --channel"):
        listing.format_text(catalog, "infinispan", "zzzzzz")


def test_broken_channel_shows_every_head_and_a_cycle_still_lists_all() -> None:
    pkg = Package("p", "c")
    pkg.channels["two-heads"] = Channel("two-heads", "p", [ChannelEntry("a"), ChannelEntry("b")])
    pkg.channels["cycle"] = Channel("cycle", "p", [ChannelEntry("x", replaces="y"), ChannelEntry("y", replaces="x")])
    catalog = Catalog(packages={"p": pkg}, source="test")
    rows = {r.name: r for r in listing.list_channels(catalog, "p")}
    assert rows["two-heads"].heads == ("a", "b") and rows["two-heads"].head_version == ""
    assert rows["cycle"].heads == ()
    assert [r.bundle for r in listing.list_versions(catalog, "p", "cycle")] == ["x", "y"]
    assert "(none)" in listing.format_text(catalog, "p")


@pytest.mark.parametrize("version,tag", [("4.15", "v4.15"), ("v4.17", "v4.17"), ("4.9", "v4.9")])
def test_redhat_catalogs(version: str, tag: str) -> None:
    assert listing.redhat_catalogs(version) == [
        f"registry.redhat.io/redhat/redhat-operator-index:{tag}",
        f"registry.redhat.io/redhat/certified-operator-index:{tag}",
        f"registry.redhat.io/redhat/community-operator-index:{tag}",
        f"registry.redhat.io/redhat/redhat-marketplace-index:{tag}",
    ]


@pytest.mark.parametrize("version", ["4", "4.15.1", "3.11", "latest", "4.x", "", "4.015"])
def test_redhat_catalogs_rejects_other_version_forms(version: str) -> None:
    with pytest.raises(UsageError, match="is not of the form 4.N") as info:
        listing.redhat_catalogs(version)
    assert info.value.exit_code == 2
